package redisstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestCluster runs the Source and the Writer on a three-node Redis Cluster
// with the default hash-tagged prefix: the facts match the file, an edit is
// visible, and export reads everything back.
func TestCluster(t *testing.T) {
	cl := testenv.StartRedisCluster(t)
	st := exampleState(t)
	w := openWriter(t, cl.URL(), "")
	importState(t, w, st)
	src := openSource(t, cl.URL(), Options{})
	checkFactsMatch(t, src, statefile.NewFacts(st, "file"), st)
	ctx := context.Background()
	if _, err := w.SetBlocked(ctx, "u-ops", true); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "block visible", func() bool { return userNow(t, src, "u-ops").Blocked })
	got, err := w.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != len(st.Users) || len(got.Infrastructures) != len(st.Infrastructures) {
		t.Errorf("export: %d users, %d infrastructures", len(got.Users), len(got.Infrastructures))
	}
	if _, err := OpenWriter(ctx, cl.URL(), "pdp:"); err == nil {
		t.Error("cluster writer accepted a prefix without a hash tag")
	}
}

// TestSentinelFailover: the master dies, the sentinel promotes the replica,
// the Source follows it (Ready again, and a block written to the new master
// is seen), and lookups never fail with anything but ErrUnavailable.
func TestSentinelFailover(t *testing.T) {
	sn := testenv.StartRedisSentinel(t)
	st := exampleState(t)
	w := openWriter(t, sn.URL(), "")
	importState(t, w, st)
	// Wait for the replica to have the imported state before failing over.
	testenv.Eventually(t, "replica synced", func() bool {
		n, err := sn.Replica.Client().Exists(context.Background(), "pdp:global").Result()
		return err == nil && n == 1
	})
	src := openSource(t, sn.URL(), Options{})
	ctx := context.Background()
	if userNow(t, src, "u-ops").Blocked {
		t.Fatal("blocked already")
	}
	sn.Failover(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := w.SetBlocked(ctx, "u-ops", true)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writing after the failover: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	testenv.Eventually(t, "block visible on the new master", func() bool {
		u, err := src.User(ctx, "u-ops")
		if err != nil && !errors.Is(err, pdp.ErrUnavailable) {
			t.Fatalf("lookup: %v", err)
		}
		return err == nil && u.Blocked && src.Ready() == nil
	})
}
