# ABAC rules of custom roles (docs/model.md "ABAC rules"). Conditions are
# matched by the Go built-ins metalsoft.conditions_match and
# metalsoft.conditions_valid (package policy/conditions).
package metalsoft.authz

# kinds and actions are the closed vocabulary of a request.
kinds := {
	"infrastructure", "reservation", "billing", "utilization_report", "credential", "user", "ui",
	"api", "server", "server_type", "server_type_utilization_report", "switch", "storage", "subnet",
	"template", "event", "job", "workflow", "variable", "secret", "price", "admin",
	"suspend_reason", "global_configuration", "maintenance", "admin_maintenance", "vm",
}

actions := {
	"read", "list", "create", "update", "delete", "deploy", "console", "share", "unshare", "resume",
	"suspend", "unsuspend", "block", "unblock", "archive", "unarchive", "pay", "access",
}

# Step 5: an inverted rule that matches, or may match, denies.
denied_by_rule if {
	some r in rules
	r.inverted == true
	r.subject in {input.resource.kind, "all"}
	rule_action(r)
	conditions_may_hold(r)
	fields_touched(r)
}

# rule_matches: subject, action and conditions match the request.
rule_matches(r) if {
	r.subject in {input.resource.kind, "all"}
	rule_action(r)
	conditions_hold(r)
}

rule_action(r) if input.action in r.actions

rule_action(r) if "manage" in r.actions

conditions_hold(r) if not r.conditions

conditions_hold(r) if metalsoft.conditions_match(r.conditions, attr, effective)

# conditions_may_hold fails closed for a deny rule: true also when the
# conditions cannot be decided (a placeholder the principal lacks).
conditions_may_hold(r) if not r.conditions

conditions_may_hold(r) if metalsoft.conditions_may_match(r.conditions, attr, effective)

# fields_allowed: a granting rule with fields allows a request that names
# fields only when it lists every one of them.
fields_allowed(r) if count(object.get(r, "fields", [])) == 0

fields_allowed(_) if count(object.get(input, "fields", [])) == 0

fields_allowed(r) if every f in input.fields {
	f in r.fields
}

# fields_touched: an inverted rule with fields denies a request that names
# one of them, or names none (it may touch any field).
fields_touched(r) if count(object.get(r, "fields", [])) == 0

fields_touched(_) if count(object.get(input, "fields", [])) == 0

fields_touched(r) if {
	some f in input.fields
	f in r.fields
}

# rule_may_grant is false where docs/model.md reserves the grant: billing (the
# user itself), a secret's value and changes (owner or root), any change of
# a credential (nobody), deleting a user (nobody) and block, unblock,
# archive, unarchive (root and full_admin).
rule_may_grant if not rule_reserved

rule_reserved if input.resource.kind == "billing"

rule_reserved if {
	input.resource.kind == "secret"
	input.action in secret_owner_actions
}

rule_reserved if {
	input.resource.kind == "credential"
	not credential_read
}

rule_reserved if {
	input.resource.kind == "user"
	input.action in {"delete", "block", "unblock", "archive", "unarchive"}
}

# valid_rule: a known subject, known actions and valid conditions.
valid_rule(r) if {
	r.subject in (kinds | {"all"})
	is_array(r.actions)
	every a in r.actions {
		a in (actions | {"manage"})
	}
	valid_conditions(r)
}

valid_conditions(r) if not r.conditions

valid_conditions(r) if metalsoft.conditions_valid(r.conditions)
