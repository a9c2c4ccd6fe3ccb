package redisstate

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/metalsoft-io/pdp/pdp"
)

// FuzzDecodeDoc feeds arbitrary documents to the strict decoder: it never
// panics, and what it accepts encodes and decodes again to the same thing.
func FuzzDecodeDoc(f *testing.F) {
	st := exampleState(f)
	seed := func(kind, id string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kind, id, b)
	}
	for _, u := range st.Users {
		seed(KindUser, u.ID, u)
	}
	for _, r := range st.Roles {
		seed(KindRole, r.Name, r)
	}
	for _, in := range st.Infrastructures {
		seed(KindInfra, in.ID, in)
	}
	for _, r := range st.Resources {
		seed(KindResource, r.Kind+":"+r.ID, r)
	}
	seed(KindGlobal, "", st.Global)
	f.Add(KindUser, "u", []byte(`{"id":"u","bogus":1}`))
	f.Add(KindEmail, "a@b", []byte("u-1"))
	f.Fuzz(func(t *testing.T, kind, id string, raw []byte) {
		v, err := decodeDoc(kind, id, raw)
		if err != nil || kind == KindEmail || kind == KindAPIKey {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted document does not encode: %v", err)
		}
		w, err := decodeDoc(kind, id, b)
		if err != nil {
			t.Fatalf("re-encoded document rejected: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(w)
		if string(b) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzDecodeFixedInfrastructure: whatever the one-pass decoder of
// infrastructures accepts, pdp.Infrastructure's own decoding accepts too and
// decodes to the same value.
func FuzzDecodeFixedInfrastructure(f *testing.F) {
	for _, in := range exampleState(f).Infrastructures {
		in.Attr = nil
		b, err := json.Marshal(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"id":"a","owner":"u","delegates":[]}`,
		`{"id":"a","ID":"b","owner":"u"}`,
		`{"\u0069d":"a","owner":"u","id":null}`,
		`{"id":"a","owner":"u","delegates":["x"],"delegates":null}`,
		`{"id":"a","owner":"u"} {}`,
		`{"id":"a","label":5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := decodeFixedInfrastructure(raw)
		if !ok {
			return
		}
		var full pdp.Infrastructure
		if err := decodeStrict(raw, &full); err != nil {
			t.Fatalf("one-pass decoder accepted what pdp.Infrastructure rejects (%v): %s", err, raw)
		}
		if !reflect.DeepEqual(*fast, full) {
			t.Fatalf("decoded differently:\none pass %#v\npdp      %#v\n%s", *fast, full, raw)
		}
	})
}
