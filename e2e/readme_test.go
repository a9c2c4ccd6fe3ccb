package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp/pdptest"
)

// readme is the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shellBlockAfter is the first ```sh block after the line holding marker.
func shellBlockAfter(t *testing.T, text, marker string) string {
	t.Helper()
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("README.md no longer holds %q", marker)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(text[i:])
	if m == nil {
		t.Fatalf("no sh block after %q", marker)
	}
	return m[1]
}

// freePort returns a loopback port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(testenv.FreeAddr(t))
	return port
}

// exitComment is a README comment's promise of an exit status: "# exit 22: ...".
var exitComment = regexp.MustCompile(`#.*\bexit (\d+)\b`)

// checkedScript turns a README shell block into a bash script that checks
// each command's exit status, 0 unless its comment says "exit N", and stops
// at the first unexpected one. A line ending in a backslash continues on
// the next. Job control is on, so that "kill %1" works as typed; whatever
// the block started in the background is killed when the script ends.
func checkedScript(block string) string {
	lines := []string{"set -m", "trap 'kill $(jobs -p) 2>/dev/null' EXIT"}
	var cont string
	for _, line := range strings.Split(block, "\n") {
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		cmd, _, _ := strings.Cut(line, " #")
		if strings.TrimSpace(cmd) == "" {
			continue
		}
		want := 0
		if m := exitComment.FindStringSubmatch(line); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
		lines = append(lines, fmt.Sprintf("%s\nrc=$?; [ $rc -eq %d ] || { echo \"exit $rc, want %d: %s\" >&2; exit 1; }",
			cmd, want, want, strings.ReplaceAll(strings.TrimSpace(cmd), `"`, `'`)))
	}
	return strings.Join(lines, "\n")
}

// TestREADMERedisWalkthrough runs the README's Redis walkthrough as written,
// in a copy of the repository's examples, with bin/ in a temporary
// directory and Redis and pdp on free ports: every command must succeed but
// the check the README says is denied (exit 1).
func TestREADMERedisWalkthrough(t *testing.T) {
	for _, tool := range []string{"redis-server", "redis-cli", "curl", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: apt-get install -y redis-server curl make (make test-deps)", tool)
		}
	}
	block := shellBlockAfter(t, readme(t), "`pdpctl` writes state the way the control plane does")
	root := testenv.RepoRoot()
	work := t.TempDir()
	redisPort, addrPort, adminPort := freePort(t), freePort(t), freePort(t)
	script := strings.NewReplacer(
		"6379", redisPort,
		"localhost:9181", "localhost:"+adminPort,
		"make build", "make -s -C "+root+" build BIN="+filepath.Join(work, "bin"),
		"examples/", filepath.Join(root, "examples")+"/",
	).Replace(block)
	lines := checkedScript(script)
	// pdp's ports move with the environment (PDP_ADDR, PDP_ADMIN_ADDR), and
	// pdpctl check's with PDP_PDP: the commands stay as the README has them.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", lines)
	sh.Dir = work
	sh.Env = append(os.Environ(), "PDP_ADDR=127.0.0.1:"+addrPort, "PDP_ADMIN_ADDR=127.0.0.1:"+adminPort,
		"PDP_PDP=http://127.0.0.1:"+addrPort)
	var out bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &out
	sh.WaitDelay = 10 * time.Second
	err := sh.Run()
	// Whatever happened, no Redis may outlive the test.
	_ = exec.Command("redis-cli", "-p", redisPort, "shutdown", "nosave").Run()
	if err != nil {
		t.Fatalf("the walkthrough failed: %v\n%s\nscript:\n%s", err, out.String(), script)
	}
	state, err := os.ReadFile(filepath.Join(work, "state.yaml"))
	if err != nil || !strings.Contains(string(state), "u-mktg") {
		t.Errorf("bin/pdpctl export > state.yaml wrote %d bytes (%v)", len(state), err)
	}
}

// TestREADMEFigures checks the counts the README and docs state against
// the repository: the fuzz targets (each described in docs/hardening.md)
// and the conformance cases.
func TestREADMEFigures(t *testing.T) {
	root := testenv.RepoRoot()
	targets := 0
	var names []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`).FindAllSubmatch(b, -1) {
				targets++
				names = append(names, string(m[1]))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hardening, err := os.ReadFile(filepath.Join(root, "docs", "hardening.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(string(hardening), "`"+name+"`") {
			t.Errorf("docs/hardening.md does not describe the fuzz target %s", name)
		}
	}
	cases := 0
	for _, s := range pdptest.Suites(t) {
		cases += len(s.Cases)
	}
	text := readme(t)
	perf, err := os.ReadFile(filepath.Join(root, "docs", "performance.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`runs (\d+) native Go fuzz targets`).FindStringSubmatch(text)
	if m == nil {
		t.Error(`README.md no longer says "runs N native Go fuzz targets"`)
	} else if n, _ := strconv.Atoi(m[1]); n != targets {
		t.Errorf("README.md says %d fuzz targets, the repository has %d", n, targets)
	}
	stated := regexp.MustCompile(`(\d[\d,]*)\s+conformance\s+cases`).FindAllStringSubmatch(text+string(perf), -1)
	if len(stated) == 0 {
		t.Error("README.md and docs/performance.md no longer state the number of conformance cases")
	}
	for _, m := range stated {
		if n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); n != cases {
			t.Errorf("%q: the repository has %d conformance cases", m[0], cases)
		}
	}
}
