package charts_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// parseDockerfile splits a Dockerfile into instructions, dropping comments
// and joining lines continued with a backslash.
func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfile checks the structure of the image the chart deploys (docker
// itself is not run here): a Go builder stage building pdp and pdpctl
// statically, a distroless (or scratch) final stage running as nonroot,
// exposing the decision and admin ports, fetching nothing with ADD; and the
// chart's default image is the one it documents.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(string(data))
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, have %d stages", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]
	if !regexp.MustCompile(`(^|\s)golang:\S+\s+AS\s+\w+`).MatchString(builder[0].args) {
		t.Errorf("first stage %q is not a named golang builder", builder[0].args)
	}
	var build string
	for _, in := range builder {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/pdp", "./cmd/pdpctl"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step lacks %s: %q", want, build)
		}
	}
	base := strings.Fields(final[0].args)[0]
	if base != "gcr.io/distroless/static-debian12:nonroot" && base != "scratch" {
		t.Errorf("final stage from %s, want distroless static nonroot or scratch", base)
	}
	var user, entrypoint string
	var exposed []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			entrypoint = in.args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u != "nonroot" && u != "65532" {
		t.Errorf("final stage runs as %q, want nonroot", user)
	}
	slices.Sort(exposed)
	if !slices.Equal(exposed, []string{"8181", "9181"}) {
		t.Errorf("exposes %v, want 8181 and 9181", exposed)
	}
	if !strings.Contains(entrypoint, "/pdp\"") {
		t.Errorf("entrypoint %s is not pdp", entrypoint)
	}
	for _, in := range ins {
		if in.cmd == "ADD" && regexp.MustCompile(`(?i)\b(https?|git)://|git@`).MatchString(in.args) {
			t.Errorf("ADD fetches from the network: %s", in.args)
		}
	}

	// The chart's default image is the one the Dockerfile's header builds.
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Image struct{ Repository string } `yaml:"image"`
	}
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "docker build -t "+v.Image.Repository+":") {
		t.Errorf("the Dockerfile does not document building the chart's image %s", v.Image.Repository)
	}
}

// TestImageBuildsMatchDockerfile: `make image` (internal/image/image.sh) builds the
// binaries as the Dockerfile does (same packages, CGO off, -trimpath, same
// ldflags with the version stamped) and lays them out alike (/pdp the
// entrypoint, /pdpctl, the example state).
func TestImageBuildsMatchDockerfile(t *testing.T) {
	docker, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("../internal/image/image.sh")
	if err != nil {
		t.Fatal(err)
	}
	goBuild := regexp.MustCompile(`CGO_ENABLED=0 .*go build (.*)`)
	// normalize names the version variable VERSION and drops the output
	// directory and quoting, leaving the flags and packages.
	normalize := func(text string) string {
		m := goBuild.FindStringSubmatch(strings.ReplaceAll(text, "\\\n", " "))
		if m == nil {
			return ""
		}
		s := regexp.MustCompile(`\$\{?(VERSION|version)\}?`).ReplaceAllString(m[1], "VERSION")
		s = regexp.MustCompile(`-o \S+`).ReplaceAllString(s, "")
		return strings.Join(strings.Fields(strings.ReplaceAll(s, `"`, "")), " ")
	}
	d, i := normalize(string(docker)), normalize(string(script))
	if d == "" || d != i {
		t.Errorf("the Dockerfile builds %q, internal/image/image.sh %q: want the same go build", d, i)
	}
	for _, want := range []string{"-trimpath", "-ldflags -s -w -X main.version=VERSION", "./cmd/pdp ./cmd/pdpctl"} {
		if !strings.Contains(d, want) {
			t.Errorf("the go build %q lacks %q", d, want)
		}
	}
	for _, want := range []string{`ENTRYPOINT ["/pdp"]`, "COPY --from=build /out/pdp /out/pdpctl /", "COPY examples/metalcloud.yaml /examples/"} {
		if !strings.Contains(string(docker), want) {
			t.Errorf("the Dockerfile lacks %s (the layout of make image)", want)
		}
	}
	for _, want := range []string{"--config.entrypoint /pdp", "./cmd/pdp ./cmd/pdpctl", "examples/metalcloud.yaml"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("internal/image/image.sh lacks %s", want)
		}
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(makefile), "LDFLAGS   := -s -w -X main.version=$(VERSION)") {
		t.Error("make build's LDFLAGS differ from the image's -s -w -X main.version=VERSION")
	}
}
