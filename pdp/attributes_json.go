package pdp

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Infrastructures and owned resources carry attributes beyond their fixed
// fields (status, tags, ...). In JSON they sit beside the fixed fields, as in
// the YAML state file; Attr holds them.

// UnmarshalJSON reads the fixed fields strictly and keeps every other one in Attr.
func (in *Infrastructure) UnmarshalJSON(b []byte) error {
	type fixed Infrastructure
	var f fixed
	attr, err := splitAttributes(b, &f, "id", "owner", "delegates", "label")
	if err != nil {
		return fmt.Errorf("infrastructure: %w", err)
	}
	*in = Infrastructure(f)
	in.Attr = attr
	return nil
}

// MarshalJSON writes the fixed fields and the attributes side by side.
func (in Infrastructure) MarshalJSON() ([]byte, error) {
	type fixed Infrastructure
	return joinAttributes(fixed(in), in.Attr)
}

// UnmarshalJSON reads the fixed fields strictly and keeps every other one in Attr.
func (r *Resource) UnmarshalJSON(b []byte) error {
	type fixed Resource
	var f fixed
	attr, err := splitAttributes(b, &f, "kind", "id", "owner", "visibility")
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	*r = Resource(f)
	r.Attr = attr
	return nil
}

// MarshalJSON writes the fixed fields and the attributes side by side.
func (r Resource) MarshalJSON() ([]byte, error) {
	type fixed Resource
	return joinAttributes(fixed(r), r.Attr)
}

// splitAttributes decodes the fixed fields of b into dst (unknown fields are
// an error there) and returns the remaining members, or nil if none.
func splitAttributes(b []byte, dst any, fixed ...string) (map[string]any, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	known := make(map[string]json.RawMessage, len(fixed))
	var attr map[string]any
	for k, v := range all {
		if contains(fixed, k) {
			known[k] = v
			continue
		}
		var val any
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := d.Decode(&val); err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		if attr == nil {
			attr = make(map[string]any)
		}
		attr[k] = val
	}
	kb, err := json.Marshal(known)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(kb))
	d.DisallowUnknownFields()
	if err := d.Decode(dst); err != nil {
		return nil, err
	}
	return attr, nil
}

// joinAttributes encodes fixed and adds the attributes that do not collide
// with a fixed field.
func joinAttributes(fixed any, attr map[string]any) ([]byte, error) {
	b, err := json.Marshal(fixed)
	if err != nil || len(attr) == 0 {
		return b, err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	for k, v := range attr {
		if _, taken := all[k]; !taken {
			all[k] = v
		}
	}
	return json.Marshal(all)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
