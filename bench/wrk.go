package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// load is one wrk run's settings. Think, when positive, is a mean think
// time: each connection waits a random time (uniform between zero and twice
// the mean, so that the connections do not fire together) after an answer
// before sending its next request, so the load stays below what the server
// can take instead of saturating it (see pace).
type load struct {
	Threads, Connections int
	Duration             time.Duration
	Think                time.Duration
}

// result is what one wrk run measured.
type result struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Non2xx   int64
	Errors   int64 // socket errors: connect, read, write, timeout
	// Measured around the run, not by wrk: the time from starting the
	// server to its first good answer (pdp: /health/ready), and its
	// resident memory when it was ready (VmRSS) and its peak from its start
	// to the end of the run (VmHWM).
	Startup                 time.Duration
	ReadyRSSKiB, PeakRSSKiB int64
}

// wrkScript sends, round robin, the requests of a file with one request per
// line: METHOD<TAB>PATH<TAB>HEADERS (k=v joined by \x1f)<TAB>BODY. Requests
// are formatted once per thread at start, so the generator does no work per
// request beyond picking the next one.
const wrkScript = `
local reqs = {}
init = function(args)
  for line in io.lines(args[1]) do
    local method, path, hdrs, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    local headers = {}
    for kv in hdrs:gmatch("[^\31]+") do
      local k, v = kv:match("^([^=]*)=(.*)$")
      headers[k] = v
    end
    if body == "" then body = nil end
    reqs[#reqs + 1] = wrk.format(method, path, headers, body)
  end
  -- Start each thread at a different offset.
  i = math.random(#reqs) - 1
end
request = function()
  i = i % #reqs + 1
  return reqs[i]
end
`

// request is one HTTP request the load generator replays.
type request struct {
	Method, Path string
	Headers      map[string]string
	Body         string // single line
}

// writeRequests writes the replay file for wrkScript.
func writeRequests(path string, reqs []request) error {
	var b bytes.Buffer
	for _, r := range reqs {
		var hs []string
		for k, v := range r.Headers {
			hs = append(hs, k+"="+v)
		}
		if strings.ContainsAny(r.Body, "\n\t") {
			return fmt.Errorf("request body must be a single line without tabs: %q", r.Body)
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\n", r.Method, r.Path, strings.Join(hs, "\x1f"), r.Body)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// scriptFor is the name and text of the wrk script of l: wrkScript, and a
// delay function (which wrk calls before every request) for a think time.
// wrk waits whole milliseconds: the mean is kept by rounding a uniform
// draw of [0, 2·mean] to the nearest.
func scriptFor(l load) (name, text string) {
	if l.Think <= 0 {
		return "replay.lua", wrkScript
	}
	mean := float64(l.Think.Microseconds()) / 1000
	return fmt.Sprintf("replay-think-%dus.lua", l.Think.Microseconds()),
		wrkScript + fmt.Sprintf("delay = function() return math.floor(math.random() * %.3f + 0.5) end\n", 2*mean)
}

// pace returns l with the think time that holds its connections to about
// rps requests a second against url: a first guess (the connections over
// the rate, as if answers took no time), a two-second run at it, and the
// guess less what each request took beyond its think time in that run
// (the round trip, wrk's timer).
func pace(ctx context.Context, dir, url, file string, l load, rps float64) (load, error) {
	cycle := time.Duration(float64(l.Connections) / rps * float64(time.Second))
	trial := l
	trial.Think, trial.Duration = cycle, 2*time.Second
	r, _, err := runWrk(ctx, dir, url, file, trial)
	if err != nil {
		return l, err
	}
	beyond := time.Duration(float64(l.Connections)/r.RPS*float64(time.Second)) - cycle
	l.Think = max(cycle-beyond, 500*time.Microsecond)
	return l, nil
}

// runWrk drives baseURL with the requests in file and parses wrk's report.
func runWrk(ctx context.Context, dir, baseURL, file string, l load) (result, string, error) {
	name, text := scriptFor(l)
	script := filepath.Join(dir, name)
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		return result{}, "", err
	}
	args := []string{"-t" + strconv.Itoa(l.Threads), "-c" + strconv.Itoa(l.Connections),
		"-d" + strconv.Itoa(int(l.Duration.Seconds())) + "s", "--latency", "-s", script, baseURL, "--", file}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	out, err := cmd.CombinedOutput()
	line := "wrk " + strings.Join(args, " ")
	if err != nil {
		return result{}, line, fmt.Errorf("%s: %v\n%s", line, err, out)
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, line, fmt.Errorf("%s: %w\n%s", line, err, out)
	}
	return r, line, nil
}

// parseWrk reads requests/s, the 50% and 99% latencies, the request count,
// non-2xx answers and socket errors from wrk's --latency report.
func parseWrk(out []byte) (result, error) {
	var r result
	var haveRPS bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, err
			}
			r.RPS, haveRPS = v, true
		case len(f) == 2 && f[0] == "50%":
			r.P50 = parseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			r.P99 = parseDuration(f[1])
		case len(f) >= 2 && f[1] == "requests" && len(f) > 2 && f[2] == "in":
			r.Requests, _ = strconv.ParseInt(f[0], 10, 64)
		case len(f) == 5 && f[0] == "Non-2xx":
			r.Non2xx, _ = strconv.ParseInt(f[4], 10, 64)
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				r.Errors += n
			}
		}
	}
	if !haveRPS {
		return r, fmt.Errorf("no Requests/sec line in wrk's output")
	}
	return r, nil
}

// parseDuration reads wrk's units: us, ms, s, m.
func parseDuration(s string) time.Duration {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0
			}
			return time.Duration(f * float64(u.unit))
		}
	}
	return 0
}
