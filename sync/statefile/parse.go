package statefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/metalsoft-io/pdp/pdp"
	"go.yaml.in/yaml/v3"
)

// Parse decodes a YAML state file strictly: malformed YAML, a wrong type, an
// unknown field or a missing required field is an error that names its line.
// Infrastructures and resources keep fields beyond their fixed ones as
// attributes.
func Parse(data []byte) (*pdp.State, error) {
	var s pdp.State
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("state file: more than one YAML document")
	}
	if err := checkRequired(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// ParseFile reads and parses the state file at path.
func ParseFile(path string) (*pdp.State, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// checkRequired reports the first document that lacks a required field, with
// the line of that document.
func checkRequired(data []byte, s *pdp.State) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	line := func(section string, i int) int {
		if n := sequenceItem(&root, section, i); n != nil {
			return n.Line
		}
		return 0
	}
	missing := func(section string, i int, field string) error {
		return fmt.Errorf("state file: line %d: %s[%d]: missing required field %q", line(section, i), section, i, field)
	}
	for i, a := range s.Accounts {
		if a.ID == "" {
			return missing("accounts", i, "id")
		}
	}
	for i, u := range s.Users {
		if u.ID == "" {
			return missing("users", i, "id")
		}
	}
	for i, r := range s.Roles {
		if r.Name == "" {
			return missing("roles", i, "name")
		}
		if pdp.IsBuiltinRole(r.Name) {
			return fmt.Errorf("state file: line %d: roles[%d]: %q is a built-in role and cannot be defined", line("roles", i), i, r.Name)
		}
	}
	for i, in := range s.Infrastructures {
		if in.ID == "" {
			return missing("infrastructures", i, "id")
		}
		if in.Owner == "" {
			return missing("infrastructures", i, "owner")
		}
	}
	for i, r := range s.Resources {
		if r.Kind == "" {
			return missing("resources", i, "kind")
		}
		if r.ID == "" {
			return missing("resources", i, "id")
		}
	}
	for i, k := range s.APIKeys {
		if k.User == "" {
			return missing("api_keys", i, "user")
		}
		if (k.Key == "") == (k.SHA256 == "") {
			return fmt.Errorf("state file: line %d: api_keys[%d]: exactly one of \"key\" and \"sha256\" is required", line("api_keys", i), i)
		}
	}
	return nil
}

// sequenceItem finds root[section][i] in a parsed YAML document.
func sequenceItem(root *yaml.Node, section string, i int) *yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == section {
			seq := m.Content[j+1]
			if seq.Kind == yaml.SequenceNode && i < len(seq.Content) {
				return seq.Content[i]
			}
		}
	}
	return nil
}
