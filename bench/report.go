package main

import (
	"fmt"
	"html"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// row is the median of one target's runs in one scenario.
type row struct {
	Scenario, Target string
	result
	Runs int
}

// median takes, for each figure, the median over runs.
func median(runs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	var total result
	for _, r := range runs {
		total.Requests += r.Requests
		total.Non2xx += r.Non2xx
		total.Errors += r.Errors
	}
	total.RPS = pick(func(r result) float64 { return r.RPS })
	total.P50 = time.Duration(pick(func(r result) float64 { return float64(r.P50) }))
	total.P99 = time.Duration(pick(func(r result) float64 { return float64(r.P99) }))
	total.Startup = time.Duration(pick(func(r result) float64 { return float64(r.Startup) }))
	total.PeakRSSKiB = int64(pick(func(r result) float64 { return float64(r.PeakRSSKiB) }))
	total.ReadyRSSKiB = int64(pick(func(r result) float64 { return float64(r.ReadyRSSKiB) }))
	return total
}

// markdown renders the results table, the ratios the targets are judged on,
// the machine and the commands.
func markdown(rows []row, machine string, commands []string, notes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results\n\n%s\n\n", machine)
	b.WriteString("| scenario | target | req/s | p50 | p99 | vs bare | requests | non-2xx | socket errors | ready in | RSS at ready | peak RSS |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	bare := map[string]float64{}
	for _, r := range rows {
		if r.Target == "bare" {
			bare[r.Scenario] = r.RPS
		}
	}
	for _, r := range rows {
		ratio := "-"
		if base := bare[r.Scenario]; base > 0 {
			ratio = fmt.Sprintf("%.2fx", r.RPS/base)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %d | %d | %d | %s | %s | %s |\n", r.Scenario, r.Target, r.RPS,
			fmtDur(r.P50), fmtDur(r.P99), ratio, r.Requests, r.Non2xx, r.Errors, fmtDur(r.Startup),
			fmtKiB(r.ReadyRSSKiB), fmtKiB(r.PeakRSSKiB))
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	b.WriteString("\nCommands:\n\n```\n")
	for _, c := range commands {
		b.WriteString(c + "\n")
	}
	b.WriteString("```\n")
	return b.String()
}

// fmtKiB shows a memory size given in KiB.
func fmtKiB(k int64) string {
	if k <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(k)/1024)
}

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
}

// chartSVG draws, per scenario, one bar per target for throughput, with its
// p50/p99 written beside it.
func chartSVG(rows []row) string {
	const (
		width, barH, gap, left, right = 900, 22, 6, 260, 40
	)
	max := 0.0
	for _, r := range rows {
		if r.RPS > max {
			max = r.RPS
		}
	}
	if max == 0 {
		max = 1
	}
	colors := map[string]string{"bare": "#9e9e9e", "pdp": "#2e7d32", "opa": "#1565c0"}
	var b strings.Builder
	height := 50 + len(rows)*(barH+gap) + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="24" font-size="16" font-weight="bold">Throughput (req/s, median of runs) and latency p50 / p99</text>`+"\n")
	y := 45
	for _, r := range rows {
		w := int(float64(width-left-right-170) * r.RPS / max)
		color := colors[r.Target]
		if color == "" {
			color = "#6d4c41"
		}
		fmt.Fprintf(&b, `<text x="10" y="%d">%s</text>`, y+16, html.EscapeString(r.Scenario+" · "+r.Target))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, left, y, w, barH, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%.0f req/s · p50 %s · p99 %s</text>`+"\n", left+w+6, y+16, r.RPS,
			html.EscapeString(fmtDur(r.P50)), html.EscapeString(fmtDur(r.P99)))
		y += barH + gap
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// machineLine describes where the numbers come from.
func machineLine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("Machine: %s, %d cores (GOMAXPROCS %d), %s, %s/%s, host %s, %s.", cpu, runtime.NumCPU(),
		runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, host, time.Now().UTC().Format(time.RFC3339))
}
