package redisstate

import (
	"encoding/json"
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
