package redisstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/metalsoft-io/pdp/pdp"
)

// decodeStrict decodes one JSON document into dst: unknown fields and
// trailing data are errors, numbers in free-form values stay json.Number.
func decodeStrict(raw []byte, dst any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	d.UseNumber()
	if err := d.Decode(dst); err != nil {
		return err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the document")
	}
	return nil
}

// decodeDoc decodes the document stored under kind/id and checks its
// required fields and that it names the key it is stored under. It returns
// a typed pointer (*pdp.User, ...) as any.
func decodeDoc(kind, id, raw string) (any, error) {
	v, err := decodeKind(kind, id, raw)
	if err != nil {
		return nil, fmt.Errorf("malformed %s document %q: %w", kind, id, err)
	}
	return v, nil
}

func decodeKind(kind, id, raw string) (any, error) {
	switch kind {
	case KindUser:
		u, err := decodeUser(raw)
		if err != nil {
			return nil, err
		}
		return u, matchID("id", u.ID, id)
	case KindAccount:
		var a pdp.Account
		if err := decodeStrict([]byte(raw), &a); err != nil {
			return nil, err
		}
		return &a, matchID("id", a.ID, id)
	case KindRole:
		var r pdp.Role
		if err := decodeStrict([]byte(raw), &r); err != nil {
			return nil, err
		}
		if pdp.IsBuiltinRole(r.Name) {
			return nil, fmt.Errorf("%q is a built-in role and cannot be stored", r.Name)
		}
		return &r, matchID("name", r.Name, id)
	case KindInfra:
		in, err := decodeInfrastructure(raw)
		if err != nil {
			return nil, err
		}
		if in.Owner == "" {
			return nil, errors.New(`missing required field "owner"`)
		}
		return in, matchID("id", in.ID, id)
	case KindResource:
		var r pdp.Resource
		if err := decodeStrict([]byte(raw), &r); err != nil {
			return nil, err
		}
		if r.Kind == "" {
			return nil, errors.New(`missing required field "kind"`)
		}
		return &r, matchID("kind and id", r.Kind+":"+r.ID, id)
	case KindGlobal:
		var g pdp.Global
		if err := decodeStrict([]byte(raw), &g); err != nil {
			return nil, err
		}
		return &g, nil
	case KindAPIKey, KindEmail:
		if raw == "" || strings.TrimSpace(raw) != raw {
			return nil, errors.New("not a user id")
		}
		return raw, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// decodeUser decodes a user document: the common shape in one pass
// (decodeFixedUser), any other (or an error to report) by encoding/json.
func decodeUser(raw string) (*pdp.User, error) {
	if u, ok := decodeFixedUser(raw); ok {
		return u, nil
	}
	var u pdp.User
	return &u, decodeStrict([]byte(raw), &u)
}

// decodeInfrastructure decodes an infrastructure document. A document of
// fixed fields only, the common one, is read in one pass
// (decodeFixedInfrastructure); any other (with attributes, or an error to
// report) is decoded by pdp.Infrastructure's own decoding, which splits the
// attributes from the fixed fields in three.
func decodeInfrastructure(raw string) (*pdp.Infrastructure, error) {
	if in, ok := decodeFixedInfrastructure(raw); ok {
		return in, nil
	}
	var in pdp.Infrastructure
	return &in, decodeStrict([]byte(raw), &in)
}

// matchID checks a required identifying field against the key's id.
func matchID(field, got, want string) error {
	if got == "" {
		return fmt.Errorf("missing required field %q", field)
	}
	if got != want {
		return fmt.Errorf("document %s %q does not match its key %q", field, got, want)
	}
	return nil
}
