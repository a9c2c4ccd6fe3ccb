// Command bench is pdp's load harness (`make bench`). On loopback it starts
// (1) a bare fasthttp server answering a constant decision body — the limit
// of the machine —, (2) pdp and (3) the stock OPA server (`opa run --server`,
// the OPA module at the version pdp embeds) loaded with the same policy and
// the same facts as data, and drives each with the same load generator (wrk,
// one thread, the same connections and duration), alternating targets within
// every round. It writes bench/results/results.md and results.svg.
//
// Scenarios: hot (3,000 distinct checks over a state file), distinct (the
// same checks, each with a nonce attribute, the decision cache off: every
// request a full evaluation), authz
// (forward-auth through /v1/authz with API keys), batch (ten checks a
// request) and cold (one million users and infrastructures in Redis, every
// principal once in random order, under a small facts cache budget; plus
// the same pdp sent a hot set).
//
// Besides throughput and latency it checks that pdp and OPA decide alike
// on a sample of the hot requests, records each server's time to ready and
// resident memory, and measures revocation (a block written to Redis until
// pdp answers principal_blocked) idle and under load. docs/performance.md
// explains the numbers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/metalsoft-io/pdp/pdp"
)

// target is one server under load in one scenario.
type target struct {
	name  string
	url   string    // base URL wrk drives
	admin string    // pdp's admin base URL (its /metrics); empty for other servers
	reqs  []request // what it is sent
	setup func(ctx context.Context) (*proc, error)
	// during, if set, runs while wrk drives the target with l and returns
	// notes (the revocation probe of the cold scenario). Such a target is
	// also driven once more, after the rounds, at half the rate it
	// sustained (paced), for during alone.
	during func(ctx context.Context, l load) []string
	// summary, if set, returns notes once every round has run (the
	// revocation probe's verdict over all the rounds' changes).
	summary func() []string
	// cold: no warm-up beyond a second of load (the cold scenario's pdp,
	// whose every request is new).
	cold bool
}

// scenario is a set of targets measured alternately.
type scenario struct {
	name    string
	targets []target
	// check, if set, runs once before the measurements and returns notes
	// (the pdp/OPA equivalence check of the hot scenario).
	check   func(ctx context.Context) ([]string, error)
	cleanup func()
}

func main() {
	var (
		out      = flag.String("out", "bench/results", "directory for results.md and results.svg")
		duration = flag.Duration("duration", 10*time.Second, "length of one wrk run")
		rounds   = flag.Int("rounds", 3, "runs of every target; the median is reported")
		conns    = flag.Int("connections", 32, "wrk connections")
		only     = flag.String("scenarios", "hot,distinct,authz,batch,cold", "comma-separated scenarios to run")
		coldN    = flag.Int("cold-principals", 1_000_000, "distinct principals (and infrastructures) of the cold scenario")
		budget   = flag.Int64("cold-cache-max-cost", 16<<20, "pdp's --cache-max-cost in the cold scenario, in bytes")
	)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *out, load{Threads: 1, Connections: *conns, Duration: *duration}, *rounds, strings.Split(*only, ","), *coldN, *budget); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out string, l load, rounds int, scenarios []string, coldN int, coldBudget int64) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install -y wrk (make bench installs it)")
	}
	work, err := os.MkdirTemp("", "pdp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	log.Printf("building pdp, the bare server and OPA in %s", work)
	bins, err := buildAll(ctx, work)
	if err != nil {
		return err
	}
	var rows []row
	var notes []string
	commands := []string{"make bench   # go run ./bench -out bench/results"}
	for _, name := range scenarios {
		sc, err := newScenario(ctx, name, work, bins, coldN, coldBudget)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		if sc.check != nil {
			scNotes, err := sc.check(ctx)
			if err != nil {
				if sc.cleanup != nil {
					sc.cleanup()
				}
				return fmt.Errorf("scenario %s: %w", name, err)
			}
			notes = append(notes, scNotes...)
		}
		// What building the scenario left behind (a million requests and
		// documents for the cold one) is collected now, not by a
		// collection that would mark it on the same cores while a target
		// is measured.
		runtime.GC()
		scRows, cmds, scNotes, err := measure(ctx, work, sc, l, rounds)
		notes = append(notes, scNotes...)
		if sc.cleanup != nil {
			sc.cleanup()
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", name, err)
		}
		rows = append(rows, scRows...)
		commands = append(commands, cmds...)
	}
	notes = append(append(ratioNotes(rows), memoryNotes(rows, coldBudget)...), notes...)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	md := markdown(rows, machineLine(), commands, notes)
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.svg"), []byte(chartSVG(rows)), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// measure runs every target of sc once per round, in turn, and keeps the
// median of each. A target is started before its run and stopped after it,
// so the targets never compete for the cores.
func measure(ctx context.Context, work string, sc scenario, l load, rounds int) ([]row, []string, []string, error) {
	runs := make(map[string][]result)
	var cmds, notes []string
	for round := 0; round < rounds; round++ {
		for _, t := range sc.targets {
			r, line, tNotes, err := measureOnce(ctx, work, sc, t, l, 0)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("%s: %w", t.name, err)
			}
			log.Printf("%s/%s round %d: %.0f req/s p50 %s p99 %s, ready in %s, RSS %s at ready, peak %s", sc.name, t.name,
				round+1, r.RPS, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.Startup), fmtKiB(r.ReadyRSSKiB), fmtKiB(r.PeakRSSKiB))
			runs[t.name] = append(runs[t.name], r)
			if round == 0 {
				cmds = append(cmds, fmt.Sprintf("# %s / %s\n%s", sc.name, t.name, line))
			}
			for _, n := range tNotes {
				notes = append(notes, fmt.Sprintf("%s / %s, round %d: %s", sc.name, t.name, round+1, n))
			}
		}
	}
	var rows []row
	for _, t := range sc.targets {
		m := median(runs[t.name])
		rows = append(rows, row{Scenario: sc.name, Target: t.name, result: m, Runs: len(runs[t.name])})
		if t.summary != nil {
			for _, n := range t.summary() {
				notes = append(notes, fmt.Sprintf("%s / %s, the %d rounds together: %s", sc.name, t.name, rounds, n))
			}
		}
		if t.during == nil {
			continue
		}
		r, line, tNotes, err := measureOnce(ctx, work, sc, t, l, m.RPS/2)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s at half load: %w", t.name, err)
		}
		log.Printf("%s/%s at half load: %.0f req/s p50 %s p99 %s", sc.name, t.name, r.RPS, fmtDur(r.P50), fmtDur(r.P99))
		cmds = append(cmds, fmt.Sprintf("# %s / %s, at half load\n%s", sc.name, t.name, line))
		for _, n := range tNotes {
			notes = append(notes, fmt.Sprintf("%s / %s, at half load (wrk's %d connections paced by a think time: %.0f req/s, %.0f%% of the rounds' median; p50 %s, p99 %s): %s",
				sc.name, t.name, l.Connections, r.RPS, 100*r.RPS/m.RPS, fmtDur(r.P50), fmtDur(r.P99), n))
		}
	}
	return rows, cmds, notes, nil
}

// measureOnce starts t, checks it answers, warms it (every request sent
// twice, unless t is cold), drives it with wrk, at full speed or, if rps is
// positive, paced to about that rate (pace), reads its resident memory and
// stops it.
func measureOnce(ctx context.Context, work string, sc scenario, t target, l load, rps float64) (result, string, []string, error) {
	if ctx.Err() != nil {
		return result{}, "", nil, ctx.Err()
	}
	began := time.Now()
	p, err := t.setup(ctx)
	if err != nil {
		return result{}, "", nil, err
	}
	defer p.stop()
	startup := time.Since(began)
	readyRSS := p.rssKiB("VmRSS")
	if err := verify(ctx, t.url, t.reqs[0]); err != nil {
		return result{}, "", nil, err
	}
	file := requestsFile(work, sc.name, t.name)
	if _, err := os.Stat(file); err != nil { // written in the first round only (or by spill)
		if err := writeRequests(file, t.reqs); err != nil {
			return result{}, "", nil, err
		}
	}
	if !t.cold {
		if err := warmUp(ctx, t.url, t.reqs); err != nil {
			return result{}, "", nil, err
		}
	} else {
		// A short warm-up of the connections, not counted.
		_, _, _ = runWrk(ctx, work, t.url, file, load{Threads: l.Threads, Connections: l.Connections, Duration: time.Second})
	}
	if rps > 0 {
		if l, err = pace(ctx, work, t.url, file, l, rps); err != nil {
			return result{}, "", nil, err
		}
	}
	var notes []string
	probeDone := make(chan struct{})
	probeCtx, stopProbe := context.WithCancel(ctx)
	go func() {
		defer close(probeDone)
		if t.during != nil {
			notes = t.during(probeCtx, l)
		}
	}()
	r, line, err := runWrk(ctx, work, t.url, file, l)
	stopProbe()
	<-probeDone
	if err != nil {
		return result{}, line, nil, err
	}
	r.Startup, r.ReadyRSSKiB, r.PeakRSSKiB = startup, readyRSS, p.rssKiB("VmHWM")
	return r, line, notes, nil
}

// requestsFile is the file wrk reads the requests of target in scenario
// from.
func requestsFile(work, scenario, target string) string {
	return filepath.Join(work, scenario+"-"+target+".requests")
}

// memoryNotes compares pdp's peak resident memory over Redis (the cold
// scenario's two pdp targets) with the target: the facts cache budget + the
// decision cache budget + 64 MiB.
func memoryNotes(rows []row, budget int64) []string {
	bound := (budget + pdp.DefaultDecisionCacheMaxBytes + 64<<20) / 1024
	var notes []string
	for _, r := range rows {
		if r.Scenario != "cold" || r.Target == "bare" || r.PeakRSSKiB == 0 {
			continue
		}
		notes = append(notes, fmt.Sprintf("cold / %s: peak resident memory %s (%s when ready); facts cache budget %s, "+
			"decision cache budget %s: target at most %s (budgets + 64 MiB): %s",
			r.Target, fmtKiB(r.PeakRSSKiB), fmtKiB(r.ReadyRSSKiB), fmtKiB(budget/1024), fmtKiB(pdp.DefaultDecisionCacheMaxBytes/1024), fmtKiB(bound), verdict(r.PeakRSSKiB <= bound)))
	}
	return notes
}

// verdict is how a result stands against its target.
func verdict(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}

// ratioNotes states each target of the performance issue against its result,
// judged on the exact ratio (0.499 is not 0.5, though both print 0.50).
func ratioNotes(rows []row) []string {
	get := func(sc, tg string) float64 {
		for _, r := range rows {
			if r.Scenario == sc && r.Target == tg {
				return r.RPS
			}
		}
		return 0
	}
	var notes []string
	note := func(what string, p, base, target float64) {
		if p <= 0 || base <= 0 {
			return
		}
		ratio := p / base
		text := fmt.Sprintf("%s is %.3fx", what, ratio)
		if target > 0 {
			text += fmt.Sprintf(" (target ≥ %gx: %s)", target, verdict(ratio >= target))
		}
		notes = append(notes, text)
	}
	note("hot /v1/check: pdp against the bare server", get("hot", "pdp"), get("hot", "bare"), 0.6)
	note("hot /v1/check: pdp against the OPA server", get("hot", "pdp"), get("hot", "opa"), 3)
	note("distinct /v1/check (every request a full evaluation): pdp against the bare server", get("distinct", "pdp"), get("distinct", "bare"), 0.5)
	note("batch (ten checks a request): pdp against the bare server", get("batch", "pdp"), get("batch", "bare"), 0.7)
	note("cold (Redis, distinct principals): pdp against the bare server", get("cold", "pdp"), get("cold", "bare"), 0.3)
	note("Redis, 3,000 distinct requests (warm decision cache): pdp against the bare server", get("cold", "pdp-hot-set"), get("cold", "bare"), 0)
	return notes
}
