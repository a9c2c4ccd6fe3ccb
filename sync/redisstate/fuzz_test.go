package redisstate

import (
	"encoding/json"
	"reflect"
	"testing"
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
		v, err := decodeDoc(kind, id, string(raw))
		if err != nil || kind == KindEmail || kind == KindAPIKey {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("accepted document does not encode: %v", err)
		}
		w, err := decodeDoc(kind, id, string(b))
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
		f.Add(mustJSON(in))
	}
	for _, c := range fixedInfrastructureCases {
		f.Add(c.doc)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		sameAsStrict(t, raw, decodeFixedInfrastructure)
	})
}

// FuzzDecodeFixedUser: whatever the one-pass decoder of users accepts,
// encoding/json (decodeStrict) accepts too and decodes to the same value.
func FuzzDecodeFixedUser(f *testing.F) {
	for _, u := range exampleState(f).Users {
		f.Add(mustJSON(u))
	}
	for _, c := range fixedUserCases {
		f.Add(c.doc)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		sameAsStrict(t, raw, decodeFixedUser)
	})
}

// sameAsStrict fails t if fast accepts raw and decodeStrict rejects it or
// decodes it to another value.
func sameAsStrict[T any](t *testing.T, raw string, fast func(string) (*T, bool)) {
	t.Helper()
	got, ok := fast(raw)
	if !ok {
		return
	}
	var want T
	if err := decodeStrict([]byte(raw), &want); err != nil {
		t.Fatalf("one-pass decoder accepted what encoding/json rejects (%v): %s", err, raw)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("decoded differently:\none pass %#v\nstrict   %#v\n%s", *got, want, raw)
	}
}
