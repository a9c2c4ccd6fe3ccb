package statefile

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

const (
	stateA = "users:\n  - {id: u-a, blocked: false}\n"
	stateB = "users:\n  - {id: u-a, blocked: true}\n"
	stateC = "users:\n  - {id: u-a}\n  - {id: u-c}\n"
	stateX = "users:\n  - {id: u-a, blocked: maybe}\n" // wrong type
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write then rename, as a careful writer does, so a reader never sees
	// half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func blocked(t *testing.T, f pdp.Facts, id string) bool {
	t.Helper()
	u, err := f.User(context.Background(), id)
	if err != nil || u == nil {
		t.Fatalf("user %s: %v, %v", id, u, err)
	}
	return u.Blocked
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.yaml")
	writeFile(t, path, stateA)
	s, ws, err := Open(path)
	if err != nil || len(ws) != 0 {
		t.Fatalf("Open: %v %v", ws, err)
	}
	if got, want := s.Revision(), Revision([]byte(stateA)); got != want || len(got) != 16 {
		t.Errorf("revision %q, want %q (16 hex digits)", got, want)
	}
	if err := s.Ready(); err != nil {
		t.Error(err)
	}
	if blocked(t, s, "u-a") {
		t.Error("u-a blocked")
	}

	if _, _, err := Open(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, bad, stateX)
	if _, _, err := Open(bad); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Open of a bad file: %v", err)
	}
}

// TestReload goes good → bad → good → missing → good with Reload.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.yaml")
	writeFile(t, path, stateA)
	s, _, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, content string // content "" removes the file
		changed, err  bool
		blocked       bool
		revision      string
	}{
		{"same content", stateA, false, false, false, stateA},
		{"good", stateB, true, false, true, stateB},
		{"bad keeps last good", stateX, false, true, true, stateB},
		{"good again", stateA, true, false, false, stateA},
		{"missing keeps last good", "", false, true, false, stateA},
		{"back", stateB, true, false, true, stateB},
	}
	for _, st := range steps {
		if st.content == "" {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, path, st.content)
		}
		_, changed, err := s.Reload()
		if changed != st.changed || (err != nil) != st.err {
			t.Errorf("%s: changed %v, err %v", st.name, changed, err)
		}
		if blocked(t, s, "u-a") != st.blocked {
			t.Errorf("%s: blocked = %v", st.name, !st.blocked)
		}
		if got := s.Revision(); got != Revision([]byte(st.revision)) {
			t.Errorf("%s: revision %s", st.name, got)
		}
	}
}

// TestWatch reloads through the watcher while readers keep asking (run
// with -race): every reader sees one whole version, and a bad version is
// logged once and never served.
func TestWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.yaml")
	writeFile(t, path, stateA)
	var logs testenv.SyncBuffer
	s, _, err := Open(path, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.Watch(ctx, 2*time.Millisecond) }()

	revs := map[string]bool{
		Revision([]byte(stateA)): true, Revision([]byte(stateB)): true, Revision([]byte(stateC)): true,
	}
	stopReaders := testenv.Concurrently(4, func() bool {
		f := s.Facts()
		if !revs[f.Revision()] {
			t.Errorf("served revision %s of no good version", f.Revision())
			return false
		}
		if u, _ := f.User(ctx, "u-a"); u == nil {
			t.Error("u-a missing")
			return false
		}
		return true
	})

	writeFile(t, path, stateB)
	testenv.Eventually(t, "stateB", func() bool { return s.Revision() == Revision([]byte(stateB)) })
	writeFile(t, path, stateX)
	testenv.Eventually(t, "the bad version to be logged", func() bool { return strings.Contains(logs.String(), "not reloaded") })
	time.Sleep(20 * time.Millisecond) // several polls of the same bad file
	if n := strings.Count(logs.String(), "not reloaded"); n != 1 {
		t.Errorf("bad version logged %d times", n)
	}
	if !blocked(t, s, "u-a") {
		t.Error("bad version replaced the last good state")
	}
	// A symlink swap, as a Kubernetes ConfigMap update does.
	other := filepath.Join(dir, "other.yaml")
	writeFile(t, other, stateC)
	link := path + ".link"
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, path); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "stateC", func() bool { return s.Revision() == Revision([]byte(stateC)) })
	if u, _ := s.User(ctx, "u-c"); u == nil {
		t.Error("u-c missing after reload")
	}
	stopReaders()
	cancel()
	wg.Wait()
	if !strings.Contains(logs.String(), "state file reloaded") {
		t.Errorf("reload not logged:\n%s", logs.String())
	}
}
