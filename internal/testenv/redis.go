package testenv

// Real redis-server processes: a single node, a three-node Redis Cluster
// and a master with a replica watched by a sentinel. Every server listens
// on a free loopback port, keeps its files in t.TempDir() and is killed
// when the test ends.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStartTimeout bounds how long a server may take to answer.
const redisStartTimeout = 10 * time.Second

// RedisServer is one redis-server process.
type RedisServer struct {
	t    testing.TB
	Port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// binary returns the path of redis-server, failing the test when missing.
func redisBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (%v): install it with `apt-get install -y redis-server`", err)
	}
	return p
}

// Start starts a single redis-server with extra command-line options (such
// as "--maxmemory", "1mb").
func StartRedis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	return startRedisServer(t, freePort(t), nil, extra...)
}

// start runs redis-server [config] --port port ... in a new temp dir.
func startRedisServer(t testing.TB, port int, config func(dir string) string, extra ...string) *RedisServer {
	t.Helper()
	dir := t.TempDir()
	var args []string
	if config != nil {
		args = append(args, config(dir))
	}
	args = append(args,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"))
	args = append(args, extra...)
	s := &RedisServer{t: t, Port: port, dir: dir, args: args}
	s.launch()
	t.Cleanup(s.Kill)
	return s
}

func (s *RedisServer) launch() {
	s.t.Helper()
	s.cmd = exec.Command(redisBinary(s.t), s.args...)
	s.cmd.Dir = s.dir
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	s.waitReady()
}

// waitReady polls PING until the server answers.
func (s *RedisServer) waitReady() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("redis-server on port %d exited: %s", s.Port, s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d did not answer within %v: %v\n%s", s.Port, redisStartTimeout, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is host:port of the server.
func (s *RedisServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL is the redis:// URL of the server.
func (s *RedisServer) URL() string { return "redis://" + s.Addr() }

// Client returns a go-redis client of the server, closed when the test ends.
func (s *RedisServer) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Log returns the server's log file.
func (s *RedisServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (s *RedisServer) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the killed server again on the same port. Its data is
// gone: it persists nothing.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Kill()
	s.launch()
}

// freePort returns a loopback port that is free, and whose cluster bus port
// (port + 10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair found")
	return 0
}

// RedisCluster is a three-master Redis Cluster without replicas.
type RedisCluster struct {
	Nodes []*RedisServer
}

// StartRedisCluster starts three cluster-enabled servers and joins them into one
// cluster with every slot assigned.
func StartRedisCluster(t testing.TB) *RedisCluster {
	t.Helper()
	c := &RedisCluster{}
	addrs := make([]string, 3)
	for i := range 3 {
		c.Nodes = append(c.Nodes, startRedisServer(t, freePort(t), nil,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000"))
		addrs[i] = c.Nodes[i].Addr()
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found (%v): install it with `apt-get install -y redis-tools`", err)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(redisStartTimeout)
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr()})
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				t.Fatalf("cluster not ok within %v: %v %s", redisStartTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return c
}

// URL is the redis+cluster:// URL of the cluster.
func (c *RedisCluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// SentinelMaster is the name under which the sentinel watches the master.
const SentinelMaster = "pdpmaster"

// RedisSentinel is a master, one replica and one sentinel watching them with a
// quorum of one and short timeouts, so that a failover takes a few seconds.
type RedisSentinel struct {
	Master, Replica, Sentinel *RedisServer
}

// StartRedisSentinel starts the master, the replica and the sentinel, and waits
// until the sentinel knows the replica.
func StartRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	m := StartRedis(t)
	r := StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(m.Port))
	conf := func(dir string) string {
		p := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
			"sentinel down-after-milliseconds %[1]s 500\n"+
			"sentinel failover-timeout %[1]s 3000\n"+
			"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, m.Port)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := startRedisServer(t, freePort(t), conf, "--sentinel")
	sn := &RedisSentinel{Master: m, Replica: r, Sentinel: s}
	sn.waitFor(t, func(sc *redis.SentinelClient) bool {
		reps, err := sc.Replicas(context.Background(), SentinelMaster).Result()
		return err == nil && len(reps) == 1 && replicaUp(reps[0])
	}, "the sentinel to see the replica")
	return sn
}

func replicaUp(r map[string]string) bool {
	return !strings.Contains(r["flags"], "down") && !strings.Contains(r["flags"], "disconnected") &&
		r["master-link-status"] == "ok"
}

// URL is the redis+sentinel:// URL of the setup.
func (s *RedisSentinel) URL() string {
	return "redis+sentinel://" + s.Sentinel.Addr() + "/" + SentinelMaster
}

// Failover kills the master and waits until the sentinel has promoted the
// replica.
func (s *RedisSentinel) Failover(t testing.TB) {
	t.Helper()
	s.Master.Kill()
	want := strconv.Itoa(s.Replica.Port)
	s.waitFor(t, func(sc *redis.SentinelClient) bool {
		addr, err := sc.GetMasterAddrByName(context.Background(), SentinelMaster).Result()
		return err == nil && len(addr) == 2 && addr[1] == want
	}, "the sentinel to promote the replica")
	r := s.Replica.Client()
	deadline := time.Now().Add(redisStartTimeout)
	for {
		info, err := r.Info(context.Background(), "replication").Result()
		if err == nil && hasLine(info, "role:master") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not become master: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasLine(text, line string) bool {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == line {
			return true
		}
	}
	return false
}

// waitFor polls the sentinel until cond holds, for up to 20 seconds.
func (s *RedisSentinel) waitFor(t testing.TB, cond func(*redis.SentinelClient) bool, what string) {
	t.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Sentinel.Addr()})
	defer sc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(sc) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, s.Sentinel.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
