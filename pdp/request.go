package pdp

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

// Reasons lists every reason code, grants first.
var Reasons = []string{
	ReasonOwner, ReasonAccountDelegate, ReasonInfrastructureDelegate, ReasonRolePermission,
	ReasonRule, ReasonSelf, ReasonImpersonation,
	ReasonUnknownPrincipal, ReasonPrincipalArchived, ReasonPrincipalBlocked,
	ReasonImpersonationNotAllowed, ReasonMaintenance, ReasonDeniedByRule, ReasonNotBillable,
	ReasonPrincipalSuspended, ReasonOwnerSuspended, ReasonLimitExceeded, ReasonNotVisible,
	ReasonFieldNotAllowed, ReasonRoleInvalid, ReasonUnknownResource, ReasonNoPermission,
	ReasonInvalidRequest, ReasonStateUnavailable, ReasonEvaluationError, ReasonNoRoute,
}

// Kinds is the closed set of resource kinds a request may name.
var Kinds = []string{
	"infrastructure", "reservation", "billing", "utilization_report", "credential", "user", "ui", "api",
	"server", "server_type", "server_type_utilization_report", "switch", "storage", "subnet",
	"template", "event", "job", "workflow", "variable", "secret", "price", "admin",
	"suspend_reason", "global_configuration", "maintenance", "admin_maintenance", "vm",
}

// Actions is the closed set of actions a request may name. "manage" and "all"
// exist only inside ABAC rules.
var Actions = []string{
	"read", "list", "create", "update", "delete", "deploy", "console", "share", "unshare",
	"resume", "suspend", "unsuspend", "block", "unblock", "archive", "unarchive", "pay", "access",
}

// IsKind reports whether k is in Kinds.
func IsKind(k string) bool { return contains(Kinds, k) }

// IsAction reports whether a is in Actions.
func IsAction(a string) bool { return contains(Actions, a) }
