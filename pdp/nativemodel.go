package pdp

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	"github.com/metalsoft-io/pdp/policy"
	"github.com/metalsoft-io/pdp/policy/conditions"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// modelTables are the constant tables of the policy (built-in roles, known
// permissions, the admin RBAC table, the impersonation scope), read from the
// compiled Rego once, so that the native evaluator never carries a copy of
// its own that could drift from the policy.
type modelTables struct {
	builtinRoles       map[string]map[string]bool   // role -> permissions
	allPermissions     map[string]bool              // permissions that grant
	knownPermissions   map[string]bool              // all_permissions and deprecated ones
	adminPermissions   map[string]map[string]string // kind -> access class -> permission
	actionClasses      map[string]string            // action -> access class
	classOverrides     map[string]map[string]string // kind -> action -> access class
	impersonationScope map[string]map[string]bool   // kind -> actions
	kinds, actions     map[string]bool              // a rule's vocabulary ("all", "manage" included)
}

// tablesQuery reads every table of modelTables in one evaluation.
const tablesQuery = `t := {
	"builtin_roles": data.metalsoft.authz.builtin_roles,
	"all_permissions": data.metalsoft.authz.all_permissions,
	"deprecated_permissions": data.metalsoft.authz.deprecated_permissions,
	"admin_permissions": data.metalsoft.authz.admin_permissions,
	"action_classes": data.metalsoft.authz.action_classes,
	"class_overrides": data.metalsoft.authz.class_overrides,
	"impersonation_scope": data.metalsoft.authz.impersonation_scope,
	"kinds": data.metalsoft.authz.kinds,
	"actions": data.metalsoft.authz.actions,
}`

// loadModelTables evaluates the tables of the policy modules mods.
func loadModelTables(mods []policy.Module) (*modelTables, error) {
	opts := []func(*rego.Rego){rego.Query(tablesQuery), rego.SetRegoVersion(ast.RegoV1)}
	for _, m := range mods {
		opts = append(opts, rego.Module(m.Name, m.Source))
	}
	opts = append(opts, conditions.RegoOptions()...)
	rs, err := rego.New(opts...).Eval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("engine: reading the policy's tables: %w", err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("engine: reading the policy's tables: %d results", len(rs))
	}
	raw, err := json.Marshal(rs[0].Bindings["t"])
	if err != nil {
		return nil, fmt.Errorf("engine: reading the policy's tables: %w", err)
	}
	var doc struct {
		BuiltinRoles       map[string][]string          `json:"builtin_roles"`
		AllPermissions     []string                     `json:"all_permissions"`
		Deprecated         []string                     `json:"deprecated_permissions"`
		AdminPermissions   map[string]map[string]string `json:"admin_permissions"`
		ActionClasses      map[string]string            `json:"action_classes"`
		ClassOverrides     map[string]map[string]string `json:"class_overrides"`
		ImpersonationScope map[string][]string          `json:"impersonation_scope"`
		Kinds              []string                     `json:"kinds"`
		Actions            []string                     `json:"actions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("engine: reading the policy's tables: %w", err)
	}
	t := &modelTables{
		builtinRoles:       make(map[string]map[string]bool, len(doc.BuiltinRoles)),
		allPermissions:     setOf(doc.AllPermissions),
		knownPermissions:   setOf(append(doc.AllPermissions, doc.Deprecated...)),
		adminPermissions:   doc.AdminPermissions,
		actionClasses:      doc.ActionClasses,
		classOverrides:     doc.ClassOverrides,
		impersonationScope: make(map[string]map[string]bool, len(doc.ImpersonationScope)),
		kinds:              setOf(append(doc.Kinds, "all")),
		actions:            setOf(append(doc.Actions, "manage")),
	}
	for r, ps := range doc.BuiltinRoles {
		t.builtinRoles[r] = setOf(ps)
	}
	for k, as := range doc.ImpersonationScope {
		t.impersonationScope[k] = setOf(as)
	}
	for _, r := range []string{RoleRoot, RoleFullAdmin, RoleBasicAdmin, RoleUser} {
		if t.builtinRoles[r] == nil {
			return nil, fmt.Errorf("engine: the policy has no built-in role %q", r)
		}
	}
	return t, nil
}

func setOf(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// compiledRole is a custom role as the native evaluator reads it: its
// validity, its granting permissions and its rules with compiled conditions.
type compiledRole struct {
	invalid     bool
	permissions map[string]bool
	rules       []compiledRule
}

// compiledRule is an ABAC rule with its conditions compiled (nil: none).
type compiledRule struct {
	subject  string
	actions  []string
	fields   []string
	inverted bool
	cond     *conditions.Matcher
}

// compileRole compiles r as role_invalid, permissions and rules of the
// policy read it.
func (t *modelTables) compileRole(r *Role) *compiledRole {
	c := &compiledRole{permissions: make(map[string]bool, len(r.Permissions)), rules: make([]compiledRule, len(r.Rules))}
	for _, p := range r.Permissions {
		if !t.knownPermissions[p] {
			c.invalid = true
		}
		if t.allPermissions[p] {
			c.permissions[p] = true
		}
	}
	for i, rule := range r.Rules {
		cr := compiledRule{subject: rule.Subject, actions: rule.Actions, fields: rule.Fields, inverted: rule.Inverted}
		if !t.kinds[rule.Subject] {
			c.invalid = true
		}
		for _, a := range rule.Actions {
			if !t.actions[a] {
				c.invalid = true
			}
		}
		if rule.Conditions != nil {
			// Through the policy value, as the built-ins read the conditions.
			v, err := attrValue(rule.Conditions)
			if err == nil {
				cr.cond, err = conditions.CompileValue(v)
			}
			if err != nil {
				c.invalid = true
			}
		}
		c.rules[i] = cr
	}
	return c
}

// principalDocument is u as the conditions' built-ins see the effective
// principal: the user document of the policy input, converted back to Go.
func principalDocument(u *User) map[string]any {
	m := map[string]any{
		"id":                u.ID,
		"role":              u.RoleName(),
		"billable":          u.Billable,
		"blocked":           u.Blocked,
		"archived":          u.Archived,
		"suspend_reasons":   anyStrings(u.SuspendReasons),
		"account_delegates": anyStrings(u.AccountDelegates),
		"limits":            anyNumbers(u.Limits),
		"usage":             anyNumbers(u.Usage),
		"credential_access": anyStrings(u.CredentialAccess),
	}
	if u.Email != "" {
		m["email"] = u.Email
	}
	if u.Account != "" {
		m["account"] = u.Account
	}
	return m
}

func anyStrings(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func anyNumbers(m map[string]int64) map[string]any {
	out := make(map[string]any, len(m))
	for k, n := range m {
		out[k] = json.Number(strconv.FormatInt(n, 10))
	}
	return out
}

// maxCompiled bounds each cache of compiled documents; a full cache starts
// over.
const maxCompiled = 4096

// docCache holds what is computed from a stored document, keyed by the
// document's pointer. Facts never modify a document they returned and a
// changed fact is a new document, so an entry is valid for as long as its
// key is held, and a fact's new version (under a new generation) is
// compiled again on first use.
type docCache[K comparable, V any] struct {
	mu      sync.RWMutex
	entries map[K]V
}

// get returns the entry of k, computing it with f when missing.
func (c *docCache[K, V]) get(k K, f func(K) V) V {
	c.mu.RLock()
	v, ok := c.entries[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = f(k)
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxCompiled {
		c.entries = make(map[K]V)
	}
	c.entries[k] = v
	c.mu.Unlock()
	return v
}
