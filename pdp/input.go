package pdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// key holds the object keys of the input, built once: terms are never
// modified once built, so every input shares them.
var key = func() map[string]*ast.Term {
	m := make(map[string]*ast.Term)
	for _, k := range []string{
		"account", "account_delegates", "accounts", "acting_as", "action", "actions",
		"admin_maintenance", "archived", "attr", "billable", "blocked", "conditions",
		"credential_access", "delegates", "email", "facts", "fields", "global", "id",
		"infrastructures", "inverted", "kind", "label", "limits", "maintenance", "name",
		"owner", "permissions", "principal", "resource", "role", "roles", "rules", "subject",
		"suspend_reasons", "usage", "users", "visibility",
	} {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

// requestItems are the members of input that come from the request itself.
func requestItems(req *Request) ([][2]*ast.Term, error) {
	res := [][2]*ast.Term{ast.Item(key["kind"], ast.StringTerm(req.Resource.Kind))}
	if req.Resource.ID != "" {
		res = append(res, ast.Item(key["id"], ast.StringTerm(req.Resource.ID)))
	}
	if req.Resource.Attr != nil {
		a, err := attrValue(req.Resource.Attr)
		if err != nil {
			return nil, invalidf("resource.attr: %v", err)
		}
		res = append(res, ast.Item(key["attr"], ast.NewTerm(a)))
	}
	items := [][2]*ast.Term{
		ast.Item(key["action"], ast.StringTerm(req.Action)),
		ast.Item(key["resource"], ast.ObjectTerm(res...)),
	}
	if req.ActingAs != "" {
		items = append(items, ast.Item(key["acting_as"], ast.StringTerm(req.ActingAs)))
	}
	if len(req.Fields) > 0 {
		items = append(items, ast.Item(key["fields"], stringsTerm(req.Fields)))
	}
	return items, nil
}

// factSet holds the facts one request's decision reads, as Go documents:
// every lookup the policy may make, stored or not. Both evaluators decide
// from it: buildInput turns it into the policy's input, the native
// evaluator reads it directly.
type factSet struct {
	principal *User // nil when unknown
	users     []userFact
	roles     []roleFact
	infras    []infraFact
	accounts  []accountFact
	resource  *Resource // the stored owned resource, nil if none
	global    *Global
}

// The lookups of a factSet; a nil document was read and is not stored.
type (
	userFact struct {
		id string
		u  *User
	}
	roleFact struct {
		name string
		r    *Role
	}
	infraFact struct {
		id string
		in *Infrastructure
	}
	accountFact struct {
		id string
		a  *Account
	}
)

// user is the stored user id, nil when not stored or not read.
func (fs *factSet) user(id string) *User {
	for _, f := range fs.users {
		if f.id == id {
			return f.u
		}
	}
	return nil
}

// role is the stored custom role name, nil when not stored or not read.
func (fs *factSet) role(name string) *Role {
	for _, f := range fs.roles {
		if f.name == name {
			return f.r
		}
	}
	return nil
}

// infrastructure is the stored infrastructure id, nil when not stored or
// not read.
func (fs *factSet) infrastructure(id string) *Infrastructure {
	for _, f := range fs.infras {
		if f.id == id {
			return f.in
		}
	}
	return nil
}

// account is the stored account id, nil when not stored or not read.
func (fs *factSet) account(id string) *Account {
	for _, f := range fs.accounts {
		if f.id == id {
			return f.a
		}
	}
	return nil
}

// gatherer resolves the facts of one request into a factSet.
type gatherer struct {
	ctx   context.Context
	facts Facts
	fs    *factSet
}

// buildInput resolves every fact the policy may read for req and builds the
// policy's input (docs/decisions.md "Input") as an ast.Value. Errors come
// from Facts or from a document that cannot be represented.
func buildInput(ctx context.Context, facts Facts, req *Request) (ast.Value, error) {
	request, err := requestItems(req)
	if err != nil {
		return nil, err
	}
	var fs factSet
	if err := gatherFacts(ctx, facts, req, &fs); err != nil {
		return nil, err
	}
	principalTerm := ast.NewObject()
	if fs.principal != nil {
		principalTerm.Insert(key["id"], ast.StringTerm(fs.principal.ID))
	}
	factsObj, err := fs.value()
	if err != nil {
		return nil, err
	}
	request = append(request,
		ast.Item(key["principal"], ast.NewTerm(principalTerm)),
		ast.Item(key["facts"], ast.NewTerm(factsObj)),
	)
	return ast.NewObject(request...), nil
}

// value is input.facts: the stored documents of fs.
func (fs *factSet) value() (ast.Object, error) {
	var users, accounts, roles, infras [][2]*ast.Term
	for _, f := range fs.users {
		if f.u != nil {
			users = append(users, ast.Item(ast.StringTerm(f.id), ast.NewTerm(userValue(f.u))))
		}
	}
	for _, f := range fs.accounts {
		if f.a != nil {
			accounts = append(accounts, ast.Item(ast.StringTerm(f.id), ast.NewTerm(accountValue(f.a))))
		}
	}
	for _, f := range fs.roles {
		if f.r == nil {
			continue
		}
		v, err := roleValue(f.r)
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", f.name, err)
		}
		roles = append(roles, ast.Item(ast.StringTerm(f.name), ast.NewTerm(v)))
	}
	for _, f := range fs.infras {
		if f.in == nil {
			continue
		}
		v, err := infrastructureValue(f.in)
		if err != nil {
			return nil, fmt.Errorf("infrastructure %q: %w", f.id, err)
		}
		infras = append(infras, ast.Item(ast.StringTerm(f.id), ast.NewTerm(v)))
	}
	obj := ast.NewObject(
		ast.Item(key["users"], ast.ObjectTerm(users...)),
		ast.Item(key["accounts"], ast.ObjectTerm(accounts...)),
		ast.Item(key["roles"], ast.ObjectTerm(roles...)),
		ast.Item(key["infrastructures"], ast.ObjectTerm(infras...)),
		ast.Item(key["global"], ast.NewTerm(globalValue(fs.global))),
	)
	if r := fs.resource; r != nil {
		v, err := resourceValue(r)
		if err != nil {
			return nil, fmt.Errorf("resource %s %q: %w", r.Kind, r.ID, err)
		}
		obj.Insert(key["resource"], ast.NewTerm(v))
	}
	return obj, nil
}

// gatherFacts resolves into fs every fact the policy may read for req. A
// document that cannot be represented as a policy value is an error, as it
// is read.
func gatherFacts(ctx context.Context, facts Facts, req *Request, fs *factSet) error {
	b := &gatherer{ctx: ctx, facts: facts, fs: fs}
	p, err := b.principal(req.Principal)
	if err != nil {
		return err
	}
	fs.principal = p
	if p != nil {
		if err := b.resolve(req, p); err != nil {
			return err
		}
	}
	g, err := facts.Global(ctx)
	if err != nil {
		return fmt.Errorf("reading global: %w", err)
	}
	if g == nil {
		return errors.New("reading global: no global document")
	}
	fs.global = g
	return nil
}

// principal finds the user who asks, nil when none is stored.
func (b *gatherer) principal(p Principal) (*User, error) {
	var (
		u   *User
		err error
	)
	switch {
	case p.ID != "":
		return b.user(p.ID)
	case p.Email != "":
		u, err = b.facts.UserByEmail(b.ctx, p.Email)
	default:
		u, err = b.facts.UserByAPIKey(b.ctx, APIKeyDigest(p.APIKey))
	}
	if err != nil {
		return nil, fmt.Errorf("reading principal: %w", err)
	}
	if u != nil {
		b.addUser(u)
	}
	return u, nil
}

// resolve gathers the facts that depend on the known principal p.
func (b *gatherer) resolve(req *Request, p *User) error {
	effective := p
	if req.ActingAs != "" {
		t, err := b.user(req.ActingAs)
		if err != nil {
			return err
		}
		if t == nil {
			return nil // unknown_principal: nothing else is read
		}
		effective = t
		if err := b.role(p.RoleName()); err != nil {
			return err
		}
	}
	if err := b.role(effective.RoleName()); err != nil {
		return err
	}
	stored, err := b.storedResource(req)
	if err != nil {
		return err
	}
	// attrString reads a string attribute as the policy does: stored
	// attributes win over the request's.
	attrString := func(k string) string {
		v := req.Resource.Attr[k]
		if sv, ok := storedAttr(stored, k); ok {
			v = sv
		}
		s, _ := v.(string)
		return s
	}
	switch req.Resource.Kind {
	case "infrastructure":
		if req.Action == "create" {
			_, err := b.user(attrString("owner"))
			return err
		}
		return b.infrastructure(req.Resource.ID)
	case "credential":
		if attrString("scope") == "instance" {
			return b.infrastructure(attrString("infrastructure"))
		}
	case "billing", "utilization_report", "user":
		_, err := b.user(req.Resource.ID)
		return err
	case "reservation":
		owner := attrString("owner")
		if stored != nil {
			owner = stored.Owner
		}
		_, err := b.user(owner)
		return err
	}
	return nil
}

// user reads (once) the user id; "" reads nothing.
func (b *gatherer) user(id string) (*User, error) {
	if id == "" {
		return nil, nil
	}
	for _, f := range b.fs.users {
		if f.id == id {
			return f.u, nil
		}
	}
	u, err := b.facts.User(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading user %q: %w", id, err)
	}
	if u != nil && u.ID != id {
		return nil, fmt.Errorf("reading user %q: document has id %q", id, u.ID)
	}
	b.fs.users = append(b.fs.users, userFact{id, u})
	return u, nil
}

// addUser puts u into the facts; the caller has not seen it before.
func (b *gatherer) addUser(u *User) {
	b.fs.users = append(b.fs.users, userFact{u.ID, u})
}

// role reads a custom role; built-in roles are the policy's.
func (b *gatherer) role(name string) error {
	if IsBuiltinRole(name) {
		return nil
	}
	for _, f := range b.fs.roles {
		if f.name == name {
			return nil
		}
	}
	r, err := b.facts.Role(b.ctx, name)
	if err != nil {
		return fmt.Errorf("reading role %q: %w", name, err)
	}
	if r != nil {
		for i, rule := range r.Rules {
			if err := checkAttr(rule.Conditions); err != nil {
				return fmt.Errorf("role %q: rule %d: conditions: %w", name, i, err)
			}
		}
	}
	b.fs.roles = append(b.fs.roles, roleFact{name, r}) // nil: role_invalid
	return nil
}

// infrastructure reads an infrastructure, its owner and the owner's account.
func (b *gatherer) infrastructure(id string) error {
	if id == "" {
		return nil
	}
	for _, f := range b.fs.infras {
		if f.id == id {
			return nil
		}
	}
	in, err := b.facts.Infrastructure(b.ctx, id)
	if err != nil {
		return fmt.Errorf("reading infrastructure %q: %w", id, err)
	}
	b.fs.infras = append(b.fs.infras, infraFact{id, in})
	if in == nil {
		return nil // unknown_resource
	}
	if err := checkAttr(in.Attr); err != nil {
		return fmt.Errorf("infrastructure %q: attributes: %w", id, err)
	}
	owner, err := b.user(in.Owner)
	if err != nil || owner == nil || owner.Account == "" {
		return err
	}
	return b.account(owner.Account)
}

func (b *gatherer) account(id string) error {
	for _, f := range b.fs.accounts {
		if f.id == id {
			return nil
		}
	}
	a, err := b.facts.Account(b.ctx, id)
	if err != nil {
		return fmt.Errorf("reading account %q: %w", id, err)
	}
	b.fs.accounts = append(b.fs.accounts, accountFact{id, a})
	return nil
}

// noStoredDocument are the kinds whose ids name users or infrastructures, or
// that have no id: they have no owned resource document.
var noStoredDocument = map[string]bool{
	"infrastructure": true, "billing": true, "utilization_report": true, "user": true,
	"ui": true, "api": true,
}

// storedAttr is attribute k of a stored resource, if it has one.
func storedAttr(r *Resource, k string) (any, bool) {
	if r == nil {
		return nil, false
	}
	v, ok := r.Attr[k]
	return v, ok
}

// storedResource reads the owned resource document of the request, if
// stored.
func (b *gatherer) storedResource(req *Request) (*Resource, error) {
	if req.Resource.ID == "" || noStoredDocument[req.Resource.Kind] {
		return nil, nil
	}
	r, err := b.facts.Resource(b.ctx, req.Resource.Kind, req.Resource.ID)
	if err != nil {
		return nil, fmt.Errorf("reading resource %s %q: %w", req.Resource.Kind, req.Resource.ID, err)
	}
	if r == nil {
		return nil, nil
	}
	if err := checkAttr(r.Attr); err != nil {
		return nil, fmt.Errorf("resource %s %q: attributes: %w", req.Resource.Kind, req.Resource.ID, err)
	}
	b.fs.resource = r
	return r, nil
}

// Documents as policy values. Optional strings are left out when empty, so
// that the policy sees them as undefined; sets and maps are always present.

func userValue(u *User) ast.Value {
	items := [][2]*ast.Term{
		ast.Item(key["id"], ast.StringTerm(u.ID)),
		ast.Item(key["role"], ast.StringTerm(u.RoleName())),
		ast.Item(key["billable"], ast.InternedTerm(u.Billable)),
		ast.Item(key["blocked"], ast.InternedTerm(u.Blocked)),
		ast.Item(key["archived"], ast.InternedTerm(u.Archived)),
		ast.Item(key["suspend_reasons"], stringsTerm(u.SuspendReasons)),
		ast.Item(key["account_delegates"], stringsTerm(u.AccountDelegates)),
		ast.Item(key["limits"], numbersTerm(u.Limits)),
		ast.Item(key["usage"], numbersTerm(u.Usage)),
		ast.Item(key["credential_access"], stringsTerm(u.CredentialAccess)),
	}
	items = optionalString(items, "email", u.Email)
	items = optionalString(items, "account", u.Account)
	return ast.NewObject(items...)
}

func accountValue(a *Account) ast.Value {
	items := [][2]*ast.Term{
		ast.Item(key["id"], ast.StringTerm(a.ID)),
		ast.Item(key["billable"], ast.InternedTerm(a.Billable)),
		ast.Item(key["limits"], numbersTerm(a.Limits)),
	}
	return ast.NewObject(optionalString(items, "name", a.Name)...)
}

func roleValue(r *Role) (ast.Value, error) {
	rules := make([]*ast.Term, len(r.Rules))
	for i, rule := range r.Rules {
		items := [][2]*ast.Term{
			ast.Item(key["subject"], ast.StringTerm(rule.Subject)),
			ast.Item(key["actions"], stringsTerm(rule.Actions)),
			ast.Item(key["inverted"], ast.InternedTerm(rule.Inverted)),
		}
		if len(rule.Fields) > 0 {
			items = append(items, ast.Item(key["fields"], stringsTerm(rule.Fields)))
		}
		if rule.Conditions != nil {
			c, err := attrValue(rule.Conditions)
			if err != nil {
				return nil, fmt.Errorf("rule %d: conditions: %w", i, err)
			}
			items = append(items, ast.Item(key["conditions"], ast.NewTerm(c)))
		}
		rules[i] = ast.ObjectTerm(items...)
	}
	return ast.NewObject(
		ast.Item(key["name"], ast.StringTerm(r.Name)),
		ast.Item(key["permissions"], stringsTerm(r.Permissions)),
		ast.Item(key["rules"], ast.ArrayTerm(rules...)),
	), nil
}

func infrastructureValue(in *Infrastructure) (ast.Value, error) {
	a, err := attrValue(in.Attr)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	items := [][2]*ast.Term{
		ast.Item(key["id"], ast.StringTerm(in.ID)),
		ast.Item(key["owner"], ast.StringTerm(in.Owner)),
		ast.Item(key["delegates"], stringsTerm(in.Delegates)),
		ast.Item(key["attr"], ast.NewTerm(a)),
	}
	return ast.NewObject(optionalString(items, "label", in.Label)...), nil
}

func resourceValue(r *Resource) (ast.Value, error) {
	a, err := attrValue(r.Attr)
	if err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	items := [][2]*ast.Term{
		ast.Item(key["kind"], ast.StringTerm(r.Kind)),
		ast.Item(key["id"], ast.StringTerm(r.ID)),
		ast.Item(key["attr"], ast.NewTerm(a)),
	}
	items = optionalString(items, "owner", r.Owner)
	return ast.NewObject(optionalString(items, "visibility", r.Visibility)...), nil
}

func globalValue(g *Global) ast.Value {
	return ast.NewObject(
		ast.Item(key["maintenance"], ast.InternedTerm(g.Maintenance)),
		ast.Item(key["admin_maintenance"], ast.InternedTerm(g.AdminMaintenance)),
		ast.Item(key["limits"], numbersTerm(g.Limits)),
	)
}

func optionalString(items [][2]*ast.Term, name, s string) [][2]*ast.Term {
	if s == "" {
		return items
	}
	return append(items, ast.Item(key[name], ast.StringTerm(s)))
}

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

func numbersTerm(m map[string]int64) *ast.Term {
	items := make([][2]*ast.Term, 0, len(m))
	for k, n := range m {
		items = append(items, ast.Item(ast.StringTerm(k), ast.InternedTerm(n)))
	}
	return ast.ObjectTerm(items...)
}

// attrValue converts an attribute map (never nil in the result).
func attrValue(m map[string]any) (ast.Value, error) {
	obj := ast.NewObject()
	for k, v := range m {
		t, err := anyValue(v, 1)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		obj.Insert(ast.StringTerm(k), ast.NewTerm(t))
	}
	return obj, nil
}

// anyValue converts an attribute value: string, bool, nil, any integer or
// float type (finite), json.Number, []any and map[string]any.
func anyValue(v any, depth int) (ast.Value, error) {
	if depth > maxAttrDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxAttrDepth)
	}
	switch x := v.(type) {
	case nil:
		return ast.NullValue, nil
	case string:
		return ast.String(x), nil
	case bool:
		return ast.Boolean(x), nil
	case json.Number:
		n, err := ast.NumberChecked(string(x))
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", string(x), err)
		}
		return n, nil
	case int:
		return ast.IntNumberTerm(x).Value, nil
	case int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return ast.InterfaceToValue(x)
	case float32:
		return floatValue(float64(x))
	case float64:
		return floatValue(x)
	case []any:
		ts := make([]*ast.Term, len(x))
		for i, e := range x {
			ev, err := anyValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			ts[i] = ast.NewTerm(ev)
		}
		return ast.NewArray(ts...), nil
	case map[string]any:
		obj := ast.NewObject()
		for k, e := range x {
			ev, err := anyValue(e, depth+1)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			obj.Insert(ast.StringTerm(k), ast.NewTerm(ev))
		}
		return obj, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

func floatValue(f float64) (ast.Value, error) {
	if err := checkFloat(f); err != nil {
		return nil, err
	}
	return ast.FloatNumberTerm(f).Value, nil
}
