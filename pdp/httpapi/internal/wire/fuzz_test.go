package wire

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metalsoft-io/pdp/pdp"
	"go.yaml.in/yaml/v3"
)

// maxDepth is the nesting limit the tests decode with, the HTTP server's
// default.
const maxDepth = 32

// invalidUTF8 are bodies that would decode but for one invalid UTF-8
// sequence inside a string: a lone continuation byte, an overlong form, a
// surrogate.
var invalidUTF8 = []string{
	`{"principal": {"id": "u-` + "\x80" + `"}, "action": "read", "resource": {"kind": "ui"}}`,
	`{"principal": {"id": "u"}, "checks": [{"action": "read", "resource": {"kind": "ui", "id": "` + "\xc0\xaf" + `"}}]}`,
	`{"principal": {"id": "u"}, "checks": [{"action": "read", "resource": {"kind": "ui", "attr": {"k": "` + "\xed\xa0\x80" + `"}}}]}`,
}

// FuzzDecodeBatch: no batch body panics the decoder; the answer is a list
// of valid requests or one Error, never both; the same body always gives
// the same answer, also decoded into the requests of another batch (as the
// HTTP server reuses them) and when the body is overwritten after decoding
// (as the HTTP server reuses it: the requests share no memory with it);
// and a decoded batch holds 1 to MaxBatch checks, each passing the
// engine's own validation. Seeded from the bodies of the HTTP server's bad
// input cases (../../testdata/bad_input.yaml) and a few good batches.
func FuzzDecodeBatch(f *testing.F) {
	data, err := os.ReadFile("../../testdata/bad_input.yaml")
	if err != nil {
		f.Fatal(err)
	}
	var cases []struct {
		Body string `yaml:"body"`
	}
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&cases); err != nil {
		f.Fatal(err)
	}
	for _, c := range cases {
		f.Add([]byte(c.Body))
	}
	for _, body := range invalidUTF8 {
		f.Add([]byte(body))
	}
	for _, s := range []string{
		`{"principal": {"id": "u-ops"}, "acting_as": "u-finance", "checks": [{"action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-web", "attr": {"deploy_type": "edit", "requested": {"servers": 2}}}, "fields": ["label"]}]}`,
		`{"principal": {"api_key": "k"}, "checks": [{"action": "read", "resource": {"kind": "ui"}}, {"action": "list", "resource": {"kind": "infrastructure"}}]}`,
		`{"principal": {"email": "a@b"}, "checks": []}`,
		`{"principal": {"id": "u"}, "checks": [{"action": "read", "resource": {"kind": "ui"}, "action": "delete"}]}`,
		`{"principal": {"id": "u"}, "checks": [1, null, "x"]}`,
		`{"principal": {"id": "u"}, "checks": [{"action": "read", "resource": {"kind": "ui", "attr": {"a": [1.5e300, -0, {"b": null}]}}, "fields": [""]}]}`,
	} {
		f.Add([]byte(s))
	}
	const other = `{"principal": {"email": "x@y"}, "acting_as": "u-x", "checks": [{"action": "deploy", "resource": {"kind": "infrastructure", "id": "inf-x", "attr": {"a": 1}}, "fields": ["f"]}, {"action": "read", "resource": {"kind": "ui"}}]}`
	f.Fuzz(func(t *testing.T, body []byte) {
		used, e := DecodeBatch([]byte(other), maxDepth, make([]pdp.Request, 0, 16))
		if e != nil {
			t.Fatal(e.Message)
		}
		reused := bytes.Clone(body)
		reqs, e := DecodeBatch(reused, maxDepth, nil)
		overwrite(reused)
		reqs2, e2 := DecodeBatch(body, maxDepth, used)
		if !reflect.DeepEqual(reqs, reqs2) || !reflect.DeepEqual(e, e2) {
			t.Fatalf("not deterministic: %v %v / %v %v", reqs, e, reqs2, e2)
		}
		if (reqs == nil) == (e == nil) {
			t.Fatalf("requests %v and error %v", reqs, e)
		}
		if reqs != nil && !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not valid UTF-8: %q", body)
		}
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("bad error %+v", e)
			}
			if e.HasIndex && !strings.HasPrefix(e.Message, "checks[") {
				t.Fatalf("indexed error without its index in the message: %+v", e)
			}
			return
		}
		if len(reqs) == 0 || len(reqs) > MaxBatch {
			t.Fatalf("%d checks decoded", len(reqs))
		}
		for i := range reqs {
			if err := reqs[i].Validate(); err != nil {
				t.Fatalf("check %d decoded but invalid: %v (%+v)", i, err, reqs[i])
			}
		}
	})
}
