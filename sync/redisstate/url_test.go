package redisstate

import (
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestURLForms checks what each URL form turns into.
func TestURLForms(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		c, cluster, err := newClient("redis://u:secret@127.0.0.1:7000/2?dial_timeout=1s", false)
		if err != nil || cluster {
			t.Fatal(err, cluster)
		}
		defer c.Close()
		o := c.(*redis.Client).Options()
		if o.Addr != "127.0.0.1:7000" || o.DB != 2 || o.Username != "u" || o.Password != "secret" {
			t.Errorf("options: %+v", o)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c, cluster, err := newClient("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002?read_timeout=2s", true)
		if err != nil || !cluster {
			t.Fatal(err, cluster)
		}
		defer c.Close()
		o := c.(*redis.ClusterClient).Options()
		if !slices.Equal(o.Addrs, []string{"10.0.0.1:7000", "10.0.0.2:7001", "10.0.0.3:7002"}) || o.Password != "pw" || o.MaxRetries != -1 {
			t.Errorf("options: %+v", o)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		u, err := multiHostURL("redis", "pw@s1:26379,s2:26379/mymaster/3", true)
		if err != nil {
			t.Fatal(err)
		}
		o, err := redis.ParseFailoverURL(u)
		if err != nil {
			t.Fatal(err)
		}
		if o.MasterName != "mymaster" || o.DB != 3 || !slices.Equal(o.SentinelAddrs, []string{"s1:26379", "s2:26379"}) {
			t.Errorf("options: %+v", o)
		}
	})
	for _, bad := range []string{
		"redis+sentinel://s1:26379",
		"redis+sentinel://s1:26379,/m",
		"redis+cluster://a:1/0",
		"redis+cluster://a:1?nonsense=1",
		"ftp://a:1",
		"a:1",
	} {
		if c, _, err := newClient(bad, false); err == nil {
			c.Close()
			t.Errorf("%q accepted", bad)
		}
	}
	if _, _, err := newClient("redis://user:hunter2@/x:y:z", false); err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("password in error: %v", err)
	}
}

// TestHashTag checks the cluster prefix rule.
func TestHashTag(t *testing.T) {
	for prefix, want := range map[string]bool{
		"{pdp}:": true, "app:{pdp}:": true, "pdp:": false, "{}:": false, "{pdp:": false, "}{": false,
	} {
		if got := hasHashTag(prefix); got != want {
			t.Errorf("hasHashTag(%q) = %v", prefix, got)
		}
	}
}
