package statefile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each file in testdata/bad is a state file that must be rejected. Its first
// line, "# want: TEXT", is what the error must contain (the line number above
// all).
func TestParseRejects(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := bytes.Cut(data, []byte("\n"))
			want, ok := strings.CutPrefix(string(first), "# want: ")
			if !ok {
				t.Fatalf("first line must be \"# want: TEXT\", got %q", first)
			}
			s, err := Parse(data)
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", s)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			if _, _, err := Load(data); err == nil {
				t.Error("Load accepted it")
			}
		})
	}
}

func TestParseExample(t *testing.T) {
	s, err := ParseFile("../../examples/metalcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 9 || len(s.Infrastructures) != 3 || len(s.Roles) != 1 {
		t.Errorf("users %d, infrastructures %d, roles %d", len(s.Users), len(s.Infrastructures), len(s.Roles))
	}
	if got := s.Infrastructures[0].Attr["status"]; got != "deployed" {
		t.Errorf("inf-web status attribute = %v", got)
	}
}

func TestParseFileNamesPath(t *testing.T) {
	_, err := ParseFile("testdata/bad/wrong-type.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/bad/wrong-type.yaml") {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestParseEmpty(t *testing.T) {
	s, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 0 {
		t.Errorf("empty file gave users %v", s.Users)
	}
}
