package pdp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Request asks whether a principal may take an action on a resource. Its JSON
// form is the body of POST /v1/check (docs/api.md).
type Request struct {
	Principal Principal   `json:"principal"`
	ActingAs  string      `json:"acting_as,omitempty"` // impersonation target, a user id
	Action    string      `json:"action"`
	Resource  ResourceRef `json:"resource"`
	Fields    []string    `json:"fields,omitempty"` // object fields an update touches
}

// Principal names who asks: exactly one of ID, Email and APIKey is set.
type Principal struct {
	ID     string `json:"id,omitempty"`
	Email  string `json:"email,omitempty"`
	APIKey string `json:"api_key,omitempty"`
}

// ResourceRef names the resource of a request and carries its attributes.
type ResourceRef struct {
	Kind string         `json:"kind"`
	ID   string         `json:"id,omitempty"`
	Attr map[string]any `json:"attr,omitempty"`
}

// Decision is the answer to a Request.
type Decision struct {
	Allow      bool           `json:"allow"`
	Reasons    []string       `json:"reasons"`
	DecisionID string         `json:"decision_id,omitempty"`
	Revision   string         `json:"revision,omitempty"`
	Explain    map[string]any `json:"explain,omitempty"` // only when asked for
}

// Reason codes: the closed set of docs/model.md, plus NoRoute, the
// forward-auth answer for a request that matches no route (docs/api.md).
const (
	// Grants.
	ReasonOwner                  = "owner"
	ReasonAccountDelegate        = "account_delegate"
	ReasonInfrastructureDelegate = "infrastructure_delegate"
	ReasonRolePermission         = "role_permission"
	ReasonRule                   = "rule"
	ReasonSelf                   = "self"
	ReasonImpersonation          = "impersonation"

	// Denials.
	ReasonUnknownPrincipal        = "unknown_principal"
	ReasonPrincipalArchived       = "principal_archived"
	ReasonPrincipalBlocked        = "principal_blocked"
	ReasonImpersonationNotAllowed = "impersonation_not_allowed"
	ReasonMaintenance             = "maintenance"
	ReasonDeniedByRule            = "denied_by_rule"
	ReasonNotBillable             = "not_billable"
	ReasonPrincipalSuspended      = "principal_suspended"
	ReasonOwnerSuspended          = "owner_suspended"
	ReasonLimitExceeded           = "limit_exceeded"
	ReasonNotVisible              = "not_visible"
	ReasonFieldNotAllowed         = "field_not_allowed"
	ReasonRoleInvalid             = "role_invalid"
	ReasonUnknownResource         = "unknown_resource"
	ReasonNoPermission            = "no_permission"
	ReasonInvalidRequest          = "invalid_request"
	ReasonStateUnavailable        = "state_unavailable"
	ReasonEvaluationError         = "evaluation_error"

	// Forward authentication only.
	ReasonNoRoute = "no_route"
)

// allReasons is every reason code, grants first.
var allReasons = []string{
	ReasonOwner, ReasonAccountDelegate, ReasonInfrastructureDelegate, ReasonRolePermission,
	ReasonRule, ReasonSelf, ReasonImpersonation,
	ReasonUnknownPrincipal, ReasonPrincipalArchived, ReasonPrincipalBlocked,
	ReasonImpersonationNotAllowed, ReasonMaintenance, ReasonDeniedByRule, ReasonNotBillable,
	ReasonPrincipalSuspended, ReasonOwnerSuspended, ReasonLimitExceeded, ReasonNotVisible,
	ReasonFieldNotAllowed, ReasonRoleInvalid, ReasonUnknownResource, ReasonNoPermission,
	ReasonInvalidRequest, ReasonStateUnavailable, ReasonEvaluationError, ReasonNoRoute,
}

// allKinds is the closed set of resource kinds a request may name.
var allKinds = []string{
	"infrastructure", "reservation", "billing", "utilization_report", "credential", "user", "ui", "api",
	"server", "server_type", "server_type_utilization_report", "switch", "storage", "subnet",
	"template", "event", "job", "workflow", "variable", "secret", "price", "admin",
	"suspend_reason", "global_configuration", "maintenance", "admin_maintenance", "vm",
}

// allActions is the closed set of actions a request may name. "manage" and
// "all" exist only inside ABAC rules.
var allActions = []string{
	"read", "list", "create", "update", "delete", "deploy", "console", "share", "unshare",
	"resume", "suspend", "unsuspend", "block", "unblock", "archive", "unarchive", "pay", "access",
}

// Reasons lists every reason code, grants first. The slice is the caller's.
func Reasons() []string { return slices.Clone(allReasons) }

// Kinds lists the closed set of resource kinds a request may name. The
// slice is the caller's.
func Kinds() []string { return slices.Clone(allKinds) }

// Actions lists the closed set of actions a request may name. The slice is
// the caller's.
func Actions() []string { return slices.Clone(allActions) }

// IsReason reports whether r is in Reasons.
func IsReason(r string) bool { return contains(allReasons, r) }

// IsKind reports whether k is in Kinds.
func IsKind(k string) bool { return contains(allKinds, k) }

// IsAction reports whether a is in Actions.
func IsAction(a string) bool { return contains(allActions, a) }

// maxAttrDepth bounds the nesting of request attributes (docs/api.md's default).
const maxAttrDepth = 32

// errInvalidRequest marks a request the engine refuses to evaluate.
var errInvalidRequest = errors.New("invalid request")

// invalidf returns an error wrapping errInvalidRequest.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidRequest, fmt.Sprintf(format, args...))
}

// Validate reports whether req is well formed: exactly one principal form,
// a kind and an action of the closed sets, non-empty field names and
// attributes of supported types nested at most 32 levels. The error wraps a
// sentinel that the engine maps to invalid_request.
func (req *Request) Validate() error {
	if req == nil {
		return invalidf("no request")
	}
	n := 0
	for _, s := range []string{req.Principal.ID, req.Principal.Email, req.Principal.APIKey} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return invalidf("principal: exactly one of id, email and api_key must be set")
	}
	if !IsKind(req.Resource.Kind) {
		return invalidf("resource.kind: unknown kind %q", req.Resource.Kind)
	}
	if !IsAction(req.Action) {
		return invalidf("action: unknown action %q", req.Action)
	}
	for i, f := range req.Fields {
		if f == "" {
			return invalidf("fields[%d]: empty field name", i)
		}
	}
	if err := checkAttr(req.Resource.Attr); err != nil {
		return invalidf("resource.attr: %v", err)
	}
	return nil
}

// checkAttr reports whether attrValue would convert m, without converting
// it.
func checkAttr(m map[string]any) error {
	for k, v := range m {
		if err := checkValue(v, 1); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	return nil
}

// checkValue reports whether anyValue would convert v: the same types, the
// same limits, the same errors.
func checkValue(v any, depth int) error {
	if depth > maxAttrDepth {
		return fmt.Errorf("nested deeper than %d levels", maxAttrDepth)
	}
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return nil
	case json.Number:
		if _, err := ast.NumberChecked(string(x)); err != nil {
			return fmt.Errorf("number %q: %w", string(x), err)
		}
		return nil
	case float32:
		return checkFloat(float64(x))
	case float64:
		return checkFloat(x)
	case []any:
		for i, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case map[string]any:
		for k, e := range x {
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported value of type %T", v)
}

func checkFloat(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("number %v is not finite", f)
	}
	return nil
}
