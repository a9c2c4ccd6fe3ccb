package redisstate

import (
	"context"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/metalsoft-io/pdp/internal/testenv"
	"github.com/metalsoft-io/pdp/pdp"
	"github.com/metalsoft-io/pdp/sync/statefile"
)

// TestExportRoundTrip: import, export as YAML, parse it back as a state
// file: the same state (API keys as digests), numbers still numbers.
func TestExportRoundTrip(t *testing.T) {
	srv := testenv.StartRedis(t)
	w := openWriter(t, srv.URL(), "")
	st := exampleState(t)
	web := slices.IndexFunc(st.Infrastructures, func(in pdp.Infrastructure) bool { return in.ID == "inf-web" })
	st.Infrastructures[web].Attr["requested"] = map[string]any{"servers": 2, "ratio": 0.5}
	importState(t, w, st)
	ctx := context.Background()
	got, err := w.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	back, err := statefile.Parse(out)
	if err != nil {
		t.Fatalf("exported YAML does not parse: %v\n%s", err, out)
	}
	want := *st
	want.APIKeys = nil
	for _, k := range st.APIKeys {
		want.APIKeys = append(want.APIKeys, pdp.APIKey{SHA256: k.Digest(), User: k.User})
	}
	sortState(&want)
	if !sameJSON(t, back, &want) {
		t.Errorf("round trip differs:\n got %s\nwant %s", mustJSON(back), mustJSON(&want))
	}
	i := slices.IndexFunc(back.Infrastructures, func(in pdp.Infrastructure) bool { return in.ID == "inf-web" })
	req, _ := back.Infrastructures[i].Attr["requested"].(map[string]any)
	if n, ok := req["servers"].(int); !ok || n != 2 {
		t.Errorf("number attribute came back as %T %v", req["servers"], req["servers"])
	}
}

// TestImportRejects: invalid states write nothing.
func TestImportRejects(t *testing.T) {
	srv := testenv.StartRedis(t)
	w := openWriter(t, srv.URL(), "")
	for name, st := range map[string]*pdp.State{
		"builtin role":    {Roles: []pdp.Role{{Name: pdp.RoleRoot}}},
		"user without id": {Users: []pdp.User{{Email: "x@y"}}},
		"infra owner":     {Infrastructures: []pdp.Infrastructure{{ID: "i"}}},
		"api key form":    {APIKeys: []pdp.APIKey{{Key: "k", SHA256: "ab", User: "u"}}},
	} {
		if _, err := w.Import(context.Background(), st); err == nil {
			t.Errorf("%s: imported", name)
		}
	}
	if n := srv.Client().DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("%d keys written", n)
	}
}
