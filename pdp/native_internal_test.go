package pdp

import (
	"testing"

	"github.com/metalsoft-io/pdp/policy"
)

// TestDocCacheBounded: the cache of compiled documents never holds more
// than maxCompiled entries, and computes an entry once while it is held.
func TestDocCacheBounded(t *testing.T) {
	var c docCache[*Role, int]
	computed := 0
	f := func(*Role) int { computed++; return computed }
	r := &Role{Name: "r"}
	if c.get(r, f) != 1 || c.get(r, f) != 1 {
		t.Fatal("entry computed twice")
	}
	for range 3 * maxCompiled {
		c.get(&Role{}, f)
		if len(c.entries) > maxCompiled {
			t.Fatalf("%d entries", len(c.entries))
		}
	}
}

// TestModelTables: the tables read from the policy hold every built-in
// role and the closed vocabulary of rules.
func TestModelTables(t *testing.T) {
	tables, err := loadModelTables(policy.Modules())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(Kinds(), "all") {
		if !tables.kinds[k] {
			t.Errorf("kind %q missing", k)
		}
	}
	for _, a := range append(Actions(), "manage") {
		if !tables.actions[a] {
			t.Errorf("action %q missing", a)
		}
	}
	if len(tables.kinds) != len(allKinds)+1 || len(tables.actions) != len(allActions)+1 {
		t.Errorf("%d kinds, %d actions", len(tables.kinds), len(tables.actions))
	}
	if root := tables.builtinRoles[RoleRoot]; len(root) != len(tables.allPermissions) {
		t.Errorf("root holds %d of %d permissions", len(root), len(tables.allPermissions))
	}
	if _, err := loadModelTables([]policy.Module{{Name: "x.rego", Source: "package metalsoft.authz\n\nx := 1\n"}}); err == nil {
		t.Error("a policy without the tables was accepted")
	}
}
