package pdp_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
)

// The repository's documentation is its contract: docs/model.md documents
// every reason code, nothing links outside the repository, and every
// relative link of the Markdown pages resolves.

// TestModelDocReasons checks that docs/model.md has a section ("### `code`")
// for every reason code pdp answers, and none for a code it does not.
// pdp.Reasons() is the complete set the policy can produce: the engine turns
// any other code out of the Rego into evaluation_error. That each code is
// produced by some case is TestReasonCoverage's job.
func TestModelDocReasons(t *testing.T) {
	documented := map[string]bool{}
	for _, h := range headings(t, filepath.Join(testenv.RepoRoot(), "docs", "model.md")) {
		if code, ok := strings.CutPrefix(h, "### `"); ok && strings.HasSuffix(code, "`") {
			documented[strings.TrimSuffix(code, "`")] = true
		}
	}
	for _, r := range pdp.Reasons() {
		if !documented[r] {
			t.Errorf("reason %s has no section (### `%s`) in docs/model.md", r, r)
		}
	}
	for code := range documented {
		if !pdp.IsReason(code) {
			t.Errorf("docs/model.md documents %s, which is no reason code of pdp.Reasons()", code)
		}
	}
}

// TestNoLinksOutsideRepository fails when any file of the repository (but
// what .gitignore leaves out) names the shared specification or seed
// directories next to it, which a user who clones the repository does not
// have.
func TestNoLinksOutsideRepository(t *testing.T) {
	root := testenv.RepoRoot()
	// Built from pieces, so that this file does not match itself.
	forbidden := [][]byte{[]byte("shared" + "/spec"), []byte("../" + "shared")}
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && slices.Contains([]string{".git", "bin", "dist"}, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		// Build output and test binaries, ignored by .gitignore, hold
		// this test's own strings.
		if !d.Type().IsRegular() || slices.Contains([]string{".test", ".out", ".tmp"}, filepath.Ext(path)) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, f := range forbidden {
			if i := bytes.Index(b, f); i >= 0 {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d names %q: link to docs/ in the repository instead", rel, bytes.Count(b[:i], []byte("\n"))+1, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 100 {
		t.Fatalf("read only %d files under %s: not the repository", n, root)
	}
}

// TestDocLinks checks every relative link of the README and docs/*.md: the
// file exists inside the repository and, for a link to a Markdown page with
// a #fragment, the page has a heading with that anchor (GitHub's rule).
func TestDocLinks(t *testing.T) {
	root := testenv.RepoRoot()
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append(pages, filepath.Join(root, "README.md"), filepath.Join(root, "charts", "pdp", "README.md"))
	anchors := map[string]map[string]bool{}
	anchorsOf := func(page string) map[string]bool {
		if a, ok := anchors[page]; ok {
			return a
		}
		a := map[string]bool{}
		seen := map[string]int{}
		for _, h := range headings(t, page) {
			slug := slugify(strings.TrimLeft(h, "#"))
			if k := seen[slug]; k > 0 {
				a[slug+"-"+strconv.Itoa(k)] = true
			} else {
				a[slug] = true
			}
			seen[slug]++
		}
		anchors[page] = a
		return a
	}
	checked := 0
	for _, page := range pages {
		rel, _ := filepath.Rel(root, page)
		for _, l := range links(t, page) {
			if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(l.target, "#")
			target := page
			if file != "" {
				target = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if r, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(r, "..") {
					t.Errorf("%s:%d: link %q leaves the repository", rel, l.line, l.target)
					continue
				}
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: link %q: %v", rel, l.line, l.target, err)
					continue
				}
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchorsOf(target)[frag] {
				t.Errorf("%s:%d: link %q: no heading with anchor #%s", rel, l.line, l.target, frag)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d relative links: the link parser is broken", checked)
	}
}

// link is a Markdown link's target and the line it is on.
type link struct {
	target string
	line   int
}

var (
	linkRE = regexp.MustCompile(`\]\(([^()\s]+)(?:\s+"[^"]*")?\)`)
	codeRE = regexp.MustCompile("`[^`]*`")
)

// links lists the inline links and images of a Markdown page, outside code
// blocks and code spans.
func links(t *testing.T, page string) []link {
	var out []link
	forEachLine(t, page, func(n int, line string, code bool) {
		if code {
			return
		}
		for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(line, ""), -1) {
			out = append(out, link{m[1], n})
		}
	})
	return out
}

// headings lists the ATX headings ("## Title") of a Markdown page, outside
// code blocks.
func headings(t *testing.T, page string) []string {
	var out []string
	forEachLine(t, page, func(_ int, line string, code bool) {
		if !code && strings.HasPrefix(line, "#") {
			out = append(out, strings.TrimSpace(line))
		}
	})
	return out
}

// forEachLine calls fn with every line of page, numbered from 1, telling
// whether it is inside a fenced code block (fence lines included).
func forEachLine(t *testing.T, page string, fn func(n int, line string, code bool)) {
	t.Helper()
	f, err := os.Open(page)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	inCode := false
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		fence := strings.HasPrefix(strings.TrimSpace(line), "```")
		if fence {
			inCode = !inCode
		}
		fn(n, line, inCode || fence)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// slugify is GitHub's heading anchor: lower case, letters, digits, "-" and
// "_" kept, spaces made "-", everything else dropped.
func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
