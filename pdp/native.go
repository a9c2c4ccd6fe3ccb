package pdp

import (
	"encoding/json"
	"math/big"
	"slices"
	"sort"
	"strconv"
)

// native is the model's decision written in Go: the same steps, in the same
// order, with the same reasons as the policy (policy/*.rego), over the same
// facts (a factSet). The policy stays the reference: a differential test
// decides random states and requests through both and fails on any
// difference (docs/performance.md).
type native struct {
	t          *modelTables
	roles      docCache[*Role, *compiledRole]
	principals docCache[*User, map[string]any]
}

// reasonSet is a set of reason codes, bit i standing for sortedReasons[i]:
// read in bit order, a set is sorted as the policy sorts its reasons.
type reasonSet uint32

var sortedReasons = func() []string {
	s := Reasons()
	sort.Strings(s)
	if len(s) > 32 {
		panic("pdp: more than 32 reason codes")
	}
	return s
}()

// reasonBit is the set holding code alone.
func reasonBit(code string) reasonSet {
	i, ok := slices.BinarySearch(sortedReasons, code)
	if !ok {
		panic("pdp: unknown reason " + code)
	}
	return 1 << i
}

var (
	rsOwner                  = reasonBit(ReasonOwner)
	rsAccountDelegate        = reasonBit(ReasonAccountDelegate)
	rsInfrastructureDelegate = reasonBit(ReasonInfrastructureDelegate)
	rsRolePermission         = reasonBit(ReasonRolePermission)
	rsRule                   = reasonBit(ReasonRule)
	rsSelf                   = reasonBit(ReasonSelf)
	rsImpersonation          = reasonBit(ReasonImpersonation)
	rsUnknownPrincipal       = reasonBit(ReasonUnknownPrincipal)
	rsPrincipalArchived      = reasonBit(ReasonPrincipalArchived)
	rsPrincipalBlocked       = reasonBit(ReasonPrincipalBlocked)
	rsImpersonationNotAllow  = reasonBit(ReasonImpersonationNotAllowed)
	rsMaintenance            = reasonBit(ReasonMaintenance)
	rsDeniedByRule           = reasonBit(ReasonDeniedByRule)
	rsNotBillable            = reasonBit(ReasonNotBillable)
	rsPrincipalSuspended     = reasonBit(ReasonPrincipalSuspended)
	rsOwnerSuspended         = reasonBit(ReasonOwnerSuspended)
	rsLimitExceeded          = reasonBit(ReasonLimitExceeded)
	rsNotVisible             = reasonBit(ReasonNotVisible)
	rsFieldNotAllowed        = reasonBit(ReasonFieldNotAllowed)
	rsRoleInvalid            = reasonBit(ReasonRoleInvalid)
	rsUnknownResource        = reasonBit(ReasonUnknownResource)
	rsNoPermission           = reasonBit(ReasonNoPermission)
)

// list is the set's codes, sorted.
func (s reasonSet) list() []string {
	out := make([]string, 0, 4)
	for i := 0; s != 0; i, s = i+1, s>>1 {
		if s&1 != 0 {
			out = append(out, sortedReasons[i])
		}
	}
	return out
}

// decide answers req from fs as the policy's decision rule does.
func (n *native) decide(req *Request, fs *factSet) (bool, []string) {
	allow, reasons := n.eval(req, fs)
	return allow, reasons.list()
}

// nativeEval is one evaluation: the request, its facts and what was
// derived from them so far.
type nativeEval struct {
	n        *native
	req      *Request
	fs       *factSet
	eff      *User
	role     *compiledRole   // the effective principal's custom role, nil if built in
	perms    map[string]bool // the effective principal's permissions
	attr     map[string]any  // the request's attributes overlaid by the stored ones
	attrDone bool
	effDoc   map[string]any // the effective principal for conditions, nil until needed
}

// eval walks the steps of docs/model.md's "Order of evaluation": the first
// step that denies decides, with every reason of that step.
func (n *native) eval(req *Request, fs *factSet) (bool, reasonSet) {
	p := fs.principal
	if p == nil {
		return false, rsUnknownPrincipal
	}
	if s := statusDenials(p); s != 0 {
		return false, s
	}
	e := &nativeEval{n: n, req: req, fs: fs, eff: p}
	var target *User
	if req.ActingAs != "" {
		target = fs.user(req.ActingAs)
		switch {
		case target == nil:
			return false, rsUnknownPrincipal
		case !slices.Contains(target.AccountDelegates, p.ID) && p.RoleName() != RoleRoot:
			return false, rsImpersonationNotAllow
		}
		if s := statusDenials(target); s != 0 {
			return false, s
		}
		if !n.t.impersonationScope[req.Resource.Kind][req.Action] {
			return false, rsImpersonationNotAllow
		}
		e.eff = target
	}
	if n.roleInvalid(fs, p) || (target != nil && n.roleInvalid(fs, target)) {
		return false, rsRoleInvalid
	}
	e.permissions()
	g := fs.global
	if (g.Maintenance && !e.perms["admin_access"]) ||
		(g.AdminMaintenance && req.Resource.Kind == "admin" && !e.perms["admin_maintenance_write"]) {
		return false, rsMaintenance
	}
	if e.deniedByRule() {
		return false, rsDeniedByRule
	}
	if e.unknownResource() {
		return false, rsUnknownResource
	}
	grants := e.grants()
	if grants == 0 {
		return false, e.noGrantReason()
	}
	if guards := e.guardDenials(); guards != 0 {
		return false, guards
	}
	if target != nil {
		grants |= rsImpersonation
	}
	return true, grants
}

func statusDenials(u *User) reasonSet {
	var s reasonSet
	if u.Archived {
		s |= rsPrincipalArchived
	}
	if u.Blocked {
		s |= rsPrincipalBlocked
	}
	return s
}

// compiled is the compiled custom role of u, nil for a built-in role or a
// role that is not stored.
func (n *native) compiled(fs *factSet, u *User) *compiledRole {
	if IsBuiltinRole(u.RoleName()) {
		return nil
	}
	r := fs.role(u.RoleName())
	if r == nil {
		return nil
	}
	return n.roles.get(r, n.t.compileRole)
}

// roleInvalid: neither built in nor stored, or stored with an unknown
// permission or a malformed rule.
func (n *native) roleInvalid(fs *factSet, u *User) bool {
	if IsBuiltinRole(u.RoleName()) {
		return false
	}
	c := n.compiled(fs, u)
	return c == nil || c.invalid
}

func (e *nativeEval) permissions() {
	if r, ok := e.n.t.builtinRoles[e.eff.RoleName()]; ok {
		e.perms = r
		return
	}
	e.role = e.n.compiled(e.fs, e.eff)
	e.perms = e.role.permissions // stored and valid: the role step passed
}

// rules of the effective principal's custom role.
func (e *nativeEval) rules() []compiledRule {
	if e.role == nil {
		return nil
	}
	return e.role.rules
}

// attributes is the policy's attr: the request's attributes overlaid by the
// stored document's (fixed fields included), objects merged deeply as
// object.union does.
func (e *nativeEval) attributes() map[string]any {
	if e.attrDone {
		return e.attr
	}
	e.attrDone = true
	var stored map[string]any
	if e.req.Resource.Kind == "infrastructure" {
		if in := e.fs.infrastructure(e.req.Resource.ID); in != nil {
			fixed := map[string]any{"owner": in.Owner}
			if in.Label != "" {
				fixed["label"] = in.Label
			}
			stored = union(in.Attr, fixed)
		}
	} else if r := e.fs.resource; r != nil {
		fixed := map[string]any{"owner": nil, "visibility": "private"}
		if r.Owner != "" {
			fixed["owner"] = r.Owner
		}
		if r.Visibility != "" {
			fixed["visibility"] = r.Visibility
		}
		stored = union(r.Attr, fixed)
	}
	e.attr = union(e.req.Resource.Attr, stored)
	if e.attr == nil {
		e.attr = map[string]any{}
	}
	return e.attr
}

// union is object.union(a, b): b's members win, objects on both sides are
// merged. Neither argument is modified; the result may be one of them.
func union(a, b map[string]any) map[string]any {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		am, aok := out[k].(map[string]any)
		bm, bok := v.(map[string]any)
		if aok && bok {
			v = union(am, bm)
		}
		out[k] = v
	}
	return out
}

// attrString is attribute k when it is a string.
func (e *nativeEval) attrString(k string) (string, bool) {
	s, ok := e.attributes()[k].(string)
	return s, ok
}

func (e *nativeEval) effectiveDoc() map[string]any {
	if e.effDoc == nil {
		e.effDoc = e.n.principals.get(e.eff, principalDocument)
	}
	return e.effDoc
}

// applies: the rule's subject and action cover the request.
func (e *nativeEval) applies(r *compiledRule) bool {
	if r.subject != e.req.Resource.Kind && r.subject != "all" {
		return false
	}
	return slices.Contains(r.actions, e.req.Action) || slices.Contains(r.actions, "manage")
}

// deniedByRule: an inverted rule that matches, or may match, and touches
// the request's fields.
func (e *nativeEval) deniedByRule() bool {
	rules := e.rules()
	for i := range rules {
		r := &rules[i]
		if !r.inverted || !e.applies(r) {
			continue
		}
		if r.cond != nil && !r.cond.MayMatch(e.attributes(), e.effectiveDoc()) {
			continue
		}
		if e.fieldsTouched(r) {
			return true
		}
	}
	return false
}

func (e *nativeEval) fieldsTouched(r *compiledRule) bool {
	if len(r.fields) == 0 || len(e.req.Fields) == 0 {
		return true
	}
	for _, f := range e.req.Fields {
		if slices.Contains(r.fields, f) {
			return true
		}
	}
	return false
}

func (e *nativeEval) fieldsAllowed(r *compiledRule) bool {
	if len(r.fields) == 0 || len(e.req.Fields) == 0 {
		return true
	}
	for _, f := range e.req.Fields {
		if !slices.Contains(r.fields, f) {
			return false
		}
	}
	return true
}

// grantingRules calls f with every non-inverted rule that matches the
// request, while f returns true.
func (e *nativeEval) grantingRules(f func(r *compiledRule) bool) {
	rules := e.rules()
	for i := range rules {
		r := &rules[i]
		if r.inverted || !e.applies(r) {
			continue
		}
		if r.cond != nil && !r.cond.Match(e.attributes(), e.effectiveDoc()) {
			continue
		}
		if !f(r) {
			return
		}
	}
}

// subject is the policy's subject_user_id: the user a request is about;
// ok is false when it is undefined. The value is any attribute value.
func (e *nativeEval) subject() (v any, ok bool) {
	kind, id := e.req.Resource.Kind, e.req.Resource.ID
	switch {
	case (kind == "billing" || kind == "utilization_report" || kind == "user") && id != "":
		return id, true
	case kind == "billing" || kind == "utilization_report":
		return e.eff.ID, true
	case kind == "reservation" || (kind == "infrastructure" && e.req.Action == "create"):
		if v, ok := e.attributes()["owner"]; ok {
			return v, true
		}
		return e.eff.ID, true
	}
	return nil, false
}

// subjectUser is the stored user the request is about, nil if none.
func (e *nativeEval) subjectUser() *User {
	v, ok := e.subject()
	if s, isString := v.(string); ok && isString {
		return e.fs.user(s)
	}
	return nil
}

func (e *nativeEval) infraListing() bool {
	return e.req.Resource.Kind == "infrastructure" && e.req.Action == "list" && e.req.Resource.ID == ""
}

func (e *nativeEval) credentialRead() bool {
	return e.req.Resource.Kind == "credential" && (e.req.Action == "read" || e.req.Action == "list")
}

// unknownResource: a named infrastructure or user that is not stored.
func (e *nativeEval) unknownResource() bool {
	switch e.req.Resource.Kind {
	case "infrastructure":
		if e.req.Action != "create" && !e.infraListing() && e.fs.infrastructure(e.req.Resource.ID) == nil {
			return true
		}
	case "credential":
		if scope, _ := e.attrString("scope"); scope == "instance" {
			id, ok := e.attributes()["infrastructure"]
			if !ok {
				id = ""
			}
			s, isString := id.(string)
			if !isString || e.fs.infrastructure(s) == nil {
				return true
			}
		}
	}
	if _, ok := e.subject(); ok && e.subjectUser() == nil {
		return true
	}
	return false
}

// ownerRights are the effective principal's owner rights on user x.
func (e *nativeEval) ownerRights(x any) reasonSet {
	s, ok := x.(string)
	if !ok {
		return 0
	}
	if s == e.eff.ID {
		return rsOwner
	}
	if u := e.fs.user(s); u != nil && slices.Contains(u.AccountDelegates, e.eff.ID) {
		return rsAccountDelegate
	}
	return 0
}

// userInfraRights are the owner and delegate rights on inf for the action.
func (e *nativeEval) userInfraRights(inf *Infrastructure) reasonSet {
	if inf == nil {
		return 0
	}
	switch e.req.Action {
	case "read", "list", "update", "deploy", "delete", "console":
		s := e.ownerRights(inf.Owner)
		if slices.Contains(inf.Delegates, e.eff.ID) {
			s |= rsInfrastructureDelegate
		}
		return s
	case "share", "unshare":
		return e.ownerRights(inf.Owner)
	}
	return 0
}

// ruleMayGrant is false where the model reserves the grant.
func (e *nativeEval) ruleMayGrant() bool {
	switch e.req.Resource.Kind {
	case "billing":
		return false
	case "secret":
		return !secretOwnerAction(e.req.Action)
	case "credential":
		return e.credentialRead()
	case "user":
		switch e.req.Action {
		case "delete", "block", "unblock", "archive", "unarchive":
			return false
		}
	}
	return true
}

func secretOwnerAction(a string) bool {
	return a == "read" || a == "create" || a == "update" || a == "delete"
}

// grants are the reasons of every grant that applies.
func (e *nativeEval) grants() reasonSet {
	var s reasonSet
	kind, action := e.req.Resource.Kind, e.req.Action
	role := e.eff.RoleName()
	switch kind {
	case "infrastructure":
		s |= e.userInfraRights(e.fs.infrastructure(e.req.Resource.ID))
		if action == "create" {
			v, _ := e.subject()
			s |= e.ownerRights(v)
		}
		if e.infraListing() {
			s |= rsSelf
		}
	case "reservation":
		switch action {
		case "read", "list", "create", "update", "delete":
			v, _ := e.subject()
			s |= e.ownerRights(v)
		}
	case "utilization_report":
		if action == "read" || action == "list" {
			v, _ := e.subject()
			s |= e.ownerRights(v)
		}
	case "billing":
		if action == "read" || action == "pay" || action == "update" {
			if v, _ := e.subject(); v == e.eff.ID {
				s |= rsSelf
			}
		}
	case "credential":
		if e.credentialRead() {
			attr := e.attributes()
			scope, defined := attr["scope"]
			if scope == "instance" {
				if id, ok := attr["infrastructure"].(string); ok {
					s |= e.userInfraRights(e.fs.infrastructure(id))
				}
			}
			if defined && scope != "instance" {
				if sc, ok := scope.(string); ok && slices.Contains(e.eff.CredentialAccess, sc) {
					s |= rsRolePermission
				}
			}
			if scope != "instance" && role == RoleRoot {
				s |= rsRolePermission
			}
		}
	case "user":
		switch action {
		case "read", "share", "unshare":
			if v, ok := e.subject(); ok && v == e.eff.ID {
				s |= rsSelf
			}
		case "update", "block", "unblock", "archive", "unarchive":
			if role == RoleRoot || role == RoleFullAdmin {
				s |= rsRolePermission
			}
		}
	case "secret":
		if secretOwnerAction(action) {
			owner, ok := e.attributes()["owner"]
			if !ok && action == "create" {
				owner = e.eff.ID
			}
			if owner == e.eff.ID {
				s |= rsOwner
			}
			if role == RoleRoot {
				s |= rsRolePermission
			}
		}
	case "ui", "api":
		if action == "access" {
			s |= rsSelf
		}
	}
	if p, ok := e.requiredPermission(); ok && e.perms[p] {
		s |= rsRolePermission
	}
	if e.ruleMayGrant() {
		e.grantingRules(func(r *compiledRule) bool {
			if e.fieldsAllowed(r) {
				s |= rsRule
				return false
			}
			return true
		})
	}
	return s
}

// requiredPermission is the admin permission that grants the request.
func (e *nativeEval) requiredPermission() (string, bool) {
	t, kind, action := e.n.t, e.req.Resource.Kind, e.req.Action
	class, ok := t.classOverrides[kind][action]
	if !ok {
		if class, ok = t.actionClasses[action]; !ok {
			return "", false
		}
	}
	p, ok := t.adminPermissions[kind][class]
	return p, ok
}

// noGrantReason is the most precise reason when nothing granted.
func (e *nativeEval) noGrantReason() reasonSet {
	reason := rsNoPermission
	if e.ruleMayGrant() {
		e.grantingRules(func(r *compiledRule) bool {
			if !e.fieldsAllowed(r) {
				reason = rsFieldNotAllowed
				return false
			}
			return true
		})
	}
	return reason
}

// guardDenials are the guards' reasons on a granted request.
func (e *nativeEval) guardDenials() reasonSet {
	var s reasonSet
	kind, action := e.req.Resource.Kind, e.req.Action
	switch {
	case kind == "infrastructure" && action == "deploy":
		var owner *User
		if inf := e.fs.infrastructure(e.req.Resource.ID); inf != nil {
			owner = e.fs.user(inf.Owner)
		}
		var account *Account
		if owner != nil && owner.Account != "" {
			account = e.fs.account(owner.Account)
		}
		if !(owner != nil && owner.Billable) && !(account != nil && account.Billable) {
			s |= rsNotBillable
		}
		if dt, ok := e.attributes()["deploy_type"]; !ok || dt != "delete" {
			if e.eff.Suspended() {
				s |= rsPrincipalSuspended
			}
			if owner != nil && owner.ID != e.eff.ID && owner.Suspended() {
				s |= rsOwnerSuspended
			}
		}
		if !e.withinLimits(owner, account) {
			s |= rsLimitExceeded
		}
	case kind == "reservation" && action == "create":
		if e.eff.Suspended() {
			s |= rsPrincipalSuspended
		}
		if owner := e.subjectUser(); owner != nil && owner.ID != e.eff.ID && owner.Suspended() {
			s |= rsOwnerSuspended
		}
	case (kind == "template" || kind == "workflow") && e.req.Resource.ID != "" && action != "create":
		attr := e.attributes()
		if attr["owner"] != e.eff.ID && attr["visibility"] != "public" {
			s |= rsNotVisible
		}
	}
	return s
}

// withinLimits: a deploy's requested amounts (an object of non-negative
// numbers, default none) fit the limits of the infrastructure's owner (nil
// when not stored), else of the owner's account, else the global ones.
func (e *nativeEval) withinLimits(owner *User, account *Account) bool {
	v, ok := e.attributes()["requested"]
	if !ok {
		return true
	}
	requested, isObject := v.(map[string]any)
	if !isObject {
		return false
	}
	for name, n := range requested {
		limit, limited := int64(0), false
		switch {
		case owner != nil && hasKey(owner.Limits, name):
			limit, limited = owner.Limits[name], true
		case account != nil && hasKey(account.Limits, name):
			limit, limited = account.Limits[name], true
		case hasKey(e.fs.global.Limits, name):
			limit, limited = e.fs.global.Limits[name], true
		}
		if !fits(n, owner, name, limit, limited) {
			return false
		}
	}
	return true
}

func hasKey(m map[string]int64, k string) bool {
	_, ok := m[k]
	return ok
}

// fits: n is a non-negative number and, when limited, n plus the owner's
// usage (0 when none; nothing fits an owner that is not stored) is at most
// limit. The arithmetic is OPA's: integers exact, other numbers big.Float
// with a 64-bit mantissa, over the number's text as the policy input holds
// it (its exponent bounded by the request's validation).
func fits(n any, owner *User, name string, limit int64, limited bool) bool {
	s, ok := numberText(n)
	if !ok {
		return false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil { // the usual case
		if i < 0 {
			return false
		}
		if !limited {
			return true
		}
		if owner == nil {
			return false
		}
		if sum, overflow := addInt(i, owner.Usage[name]); !overflow {
			return sum <= limit
		}
	}
	exact, ok := new(big.Rat).SetString(s)
	if !ok || exact.Sign() < 0 {
		return false
	}
	if !limited {
		return true
	}
	if owner == nil {
		return false
	}
	usage := owner.Usage[name]
	if exact.IsInt() {
		sum := new(big.Int).Add(exact.Num(), big.NewInt(usage))
		return sum.Cmp(big.NewInt(limit)) <= 0
	}
	x, _, err := big.ParseFloat(s, 10, 64, big.ToNearestEven)
	if err != nil {
		return false
	}
	sum := new(big.Float).Add(x, new(big.Float).SetInt64(usage))
	return sum.Cmp(new(big.Float).SetInt64(limit)) <= 0
}

func addInt(a, b int64) (int64, bool) {
	s := a + b
	return s, (a >= 0 && b >= 0 && s < 0) || (a < 0 && b < 0 && s >= 0)
}

// numberText is a numeric attribute value as the policy input holds it
// (anyValue): a json.Number's text, a float's shortest form, an integer's
// digits.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 64), true
	case int:
		return strconv.FormatInt(int64(x), 10), true
	case int8:
		return strconv.FormatInt(int64(x), 10), true
	case int16:
		return strconv.FormatInt(int64(x), 10), true
	case int32:
		return strconv.FormatInt(int64(x), 10), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint:
		return strconv.FormatUint(uint64(x), 10), true
	case uint8:
		return strconv.FormatUint(uint64(x), 10), true
	case uint16:
		return strconv.FormatUint(uint64(x), 10), true
	case uint32:
		return strconv.FormatUint(uint64(x), 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}
