# METADATA
# title: MetalSoft / MetalCloud authorization
# description: |
#   The decision of the policy decision point (docs/model.md).
#   input is the check request with the principal resolved to a stored user
#   id, plus input.facts: the documents the decision reads (docs/decisions.md
#   describes the shape). The entry point is decision.
package metalsoft.authz

# decision is the answer: {"allow": bool, "reasons": [code, ...]}. It is
# always defined: when no step denies and nothing grants, it denies.
decision := {"allow": outcome.allow, "reasons": sort(outcome.reasons)}

# allow is decision.allow, for clients of OPA's data API.
allow := decision.allow

# outcome walks the steps of docs/model.md's "Order of evaluation": the first
# step that denies decides, with every reason of that step.
outcome := {"step": "identity", "allow": false, "reasons": {"unknown_principal"}} if {
	not principal
} else := {"step": "status", "allow": false, "reasons": s} if {
	s := status_denials(principal)
	count(s) > 0
} else := {"step": "impersonation", "allow": false, "reasons": impersonation_denials} if {
	count(impersonation_denials) > 0
} else := {"step": "impersonation_scope", "allow": false, "reasons": {"impersonation_not_allowed"}} if {
	impersonating
	not impersonation_in_scope
} else := {"step": "role", "allow": false, "reasons": {"role_invalid"}} if {
	some u in acting_users
	role_invalid(u)
} else := {"step": "maintenance", "allow": false, "reasons": {"maintenance"}} if {
	maintenance_denied
} else := {"step": "deny_rules", "allow": false, "reasons": {"denied_by_rule"}} if {
	denied_by_rule
} else := {"step": "resource", "allow": false, "reasons": {"unknown_resource"}} if {
	unknown_resource
} else := {"step": "guards", "allow": false, "reasons": guard_denials} if {
	count(grants) > 0
	count(guard_denials) > 0
} else := {"step": "grants", "allow": true, "reasons": (grants | impersonation_grant)} if {
	count(grants) > 0
} else := {"step": "no_grant", "allow": false, "reasons": {no_grant_reason}}

# The request.

resource_id := object.get(input.resource, "id", "")

request_attr := object.get(input.resource, "attr", {})

# attr is what conditions and guards read: the request's attributes overlaid
# by the stored document's, fixed fields included. Stored facts win: a stored
# owned resource has the owner it names (none if none) and its visibility
# (default private), whatever the request says.
attr := object.union(request_attr, stored_attr)

stored_attr := object.union(object.get(doc, "attr", {}), object.filter(doc, {"owner", "label"})) if {
	input.resource.kind == "infrastructure"
	doc := input.facts.infrastructures[resource_id]
} else := object.union(object.get(doc, "attr", {}), {
	"owner": object.get(doc, "owner", null),
	"visibility": object.get(doc, "visibility", "private"),
}) if {
	doc := input.facts.resource
} else := {}

# Step 4: maintenance. Only holders of admin_access pass while the system is
# in maintenance; only holders of admin_maintenance_write reach the admin
# interface while it is in maintenance.
maintenance_denied if {
	input.facts.global.maintenance == true
	not has_permission("admin_access")
}

maintenance_denied if {
	input.facts.global.admin_maintenance == true
	input.resource.kind == "admin"
	not has_permission("admin_maintenance_write")
}

# impersonation_grant adds the impersonation reason to an allow.
impersonation_grant := {"impersonation"} if impersonating

else := set()

# Step 8: the most precise reason when nothing granted.
no_grant_reason := "field_not_allowed" if {
	some r in rules
	not r.inverted
	rule_may_grant
	rule_matches(r)
	not fields_allowed(r)
} else := "no_permission"
