package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metalsoft-io/pdp/internal/testenv"
)

// TestDecisionLogReopen rotates the decision log as logrotate does: the
// file is renamed, pdp gets SIGHUP, and the next lines land in a new file
// under the old name while the renamed one keeps the earlier lines.
func TestDecisionLogReopen(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "decisions.jsonl")
	p := startPDP(t, nil, "--state", filepath.Join(testenv.RepoRoot(), "examples", "metalcloud.yaml"),
		"--decision-log", logPath, "--decision-log-sample", "1")
	deny := `{"principal":{"id":"u-mktg"},"action":"update","resource":{"kind":"infrastructure","id":"inf-erp"}}`

	// lines waits until path holds n decision lines.
	lines := func(path string, n int) []string {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(path)
			got = strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(b) == 0 {
				got = nil
			}
			if len(got) >= n {
				break
			}
		}
		if len(got) != n {
			t.Fatalf("%s holds %d lines, want %d:\n%s\npdp output:\n%s", path, len(got), n, strings.Join(got, "\n"), p.Logs)
		}
		return got
	}

	p.check(deny)
	lines(logPath, 1)
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reopen is asynchronous: wait for the new file, then decide.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(logPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new %s after SIGHUP; pdp output:\n%s", logPath, p.Logs)
		}
	}
	p.check(deny)
	p.check(deny)
	lines(logPath, 2)
	lines(rotated, 1)
	if !strings.Contains(p.Logs.String(), "decision log reopened") {
		t.Errorf("pdp did not log the reopen:\n%s", p.Logs)
	}
	// pdp is still serving: SIGHUP did not end it.
	select {
	case <-p.Exited():
		t.Fatalf("pdp exited after SIGHUP: %v", p.Err())
	default:
	}
}
