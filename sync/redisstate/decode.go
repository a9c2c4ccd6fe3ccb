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
func decodeDoc(kind, id string, raw []byte) (any, error) {
	v, err := decodeKind(kind, id, raw)
	if err != nil {
		return nil, fmt.Errorf("malformed %s document %q: %w", kind, id, err)
	}
	return v, nil
}

func decodeKind(kind, id string, raw []byte) (any, error) {
	switch kind {
	case KindUser:
		var u pdp.User
		if err := decodeStrict(raw, &u); err != nil {
			return nil, err
		}
		return &u, matchID("id", u.ID, id)
	case KindAccount:
		var a pdp.Account
		if err := decodeStrict(raw, &a); err != nil {
			return nil, err
		}
		return &a, matchID("id", a.ID, id)
	case KindRole:
		var r pdp.Role
		if err := decodeStrict(raw, &r); err != nil {
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
		if err := decodeStrict(raw, &r); err != nil {
			return nil, err
		}
		if r.Kind == "" {
			return nil, errors.New(`missing required field "kind"`)
		}
		return &r, matchID("kind and id", r.Kind+":"+r.ID, id)
	case KindGlobal:
		var g pdp.Global
		if err := decodeStrict(raw, &g); err != nil {
			return nil, err
		}
		return &g, nil
	case KindAPIKey, KindEmail:
		s := string(raw)
		if s == "" || strings.TrimSpace(s) != s {
			return nil, errors.New("not a user id")
		}
		return s, nil
	}
	return nil, fmt.Errorf("unknown kind %q", kind)
}

// decodeInfrastructure decodes an infrastructure document. A document of
// fixed fields only, the common one, is read in one pass; any other (with
// attributes, or an error to report) is decoded by pdp.Infrastructure's own
// decoding, which splits the attributes from the fixed fields in three.
func decodeInfrastructure(raw []byte) (*pdp.Infrastructure, error) {
	if in, ok := decodeFixedInfrastructure(raw); ok {
		return in, nil
	}
	var in pdp.Infrastructure
	return &in, decodeStrict(raw, &in)
}

// decodeFixedInfrastructure decodes a document whose members are all fixed
// fields of an infrastructure, named exactly (a member named in another case
// is an attribute for pdp.Infrastructure, unlike in a struct's decoding).
// For any other document it reports false.
func decodeFixedInfrastructure(raw []byte) (*pdp.Infrastructure, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	in := &pdp.Infrastructure{}
	for d.More() {
		name, err := d.Token()
		if err != nil {
			return nil, false
		}
		// A member given twice counts once, the last, as in pdp's decoding:
		// each value replaces the field's earlier one (null leaves it zero).
		var field any
		switch name {
		case "id":
			in.ID, field = "", &in.ID
		case "owner":
			in.Owner, field = "", &in.Owner
		case "delegates":
			in.Delegates, field = nil, &in.Delegates
		case "label":
			in.Label, field = "", &in.Label
		default:
			return nil, false
		}
		if d.Decode(field) != nil {
			return nil, false
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return in, true
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
