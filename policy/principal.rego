# Who asks: the principal, the impersonation target, the effective
# principal, their status and their role (steps 1 to 3 of docs/model.md).
package metalsoft.authz

# principal is the stored user who asks; undefined when unknown (step 1).
principal := input.facts.users[input.principal.id]

impersonating if input.acting_as != ""

# target is the impersonated user.
target := input.facts.users[input.acting_as]

# effective is the user whose rights decide: the target when impersonating.
effective := target if impersonating

effective := principal if not impersonating

# acting_users are the users whose roles take part in the decision.
acting_users contains principal

acting_users contains target

# Step 2 (and 3 for the target): archived and blocked users are denied
# everything.
status_denials(u) := {code |
	some field, code in {"archived": "principal_archived", "blocked": "principal_blocked"}
	u[field] == true
}

# Step 3: impersonation.
impersonation_denials := {"unknown_principal"} if {
	impersonating
	not target
} else := {"impersonation_not_allowed"} if {
	impersonating
	not may_impersonate
} else := status_denials(target) if {
	impersonating
} else := set()

# impersonation_scope is what an impersonation is for: payments, invoices
# and reports (seed: "perform payments or change credit card information on
# his/hers behalf"), and the UI and API to reach them. Any other request
# with acting_as is denied at step 3.
impersonation_scope := {
	"billing": {"read", "pay", "update"},
	"utilization_report": {"read"},
	"ui": {"access"},
	"api": {"access"},
}

impersonation_in_scope if input.action in impersonation_scope[input.resource.kind]

may_impersonate if principal.id in target.account_delegates

may_impersonate if principal.role == "root"

suspended(u) if count(object.get(u, "suspend_reasons", [])) > 0

# Roles and permissions.

# builtin_roles maps each built-in role to its permissions (docs/model.md
# "Built-in roles"), written out so that the compiler keeps them constant:
# root holds every permission of the table, deprecated-but-listed ones
# included; full_admin all but maintenance_write, admin_maintenance_write and
# prices_write; basic_admin every _read permission and admin_access
# (authz_test.rego checks these relations).
builtin_roles := {
	"root": {
		"servers_read", "servers_write", "server_types_read",
		"server_type_utilization_report_read", "switches_read", "switches_write",
		"storage_read", "storage_write", "subnets_read", "subnets_write",
		"infrastructures_read", "infrastructures_write", "templates_read", "templates_write",
		"events_read", "events_write", "job_queue_read", "job_queue_write", "workflows_read",
		"workflows_write", "variables_and_secrets_read", "variables_and_secrets_write",
		"prices_read", "prices_write", "subscriptions_read", "subscriptions_write",
		"utilization_reports_read", "admin_access", "suspend_reasons_read",
		"suspend_reasons_write", "global_configurations_read", "global_configurations_write",
		"maintenance_read", "maintenance_write", "admin_maintenance_read",
		"admin_maintenance_write",
	},
	"full_admin": {
		"servers_read", "servers_write", "server_types_read",
		"server_type_utilization_report_read", "switches_read", "switches_write",
		"storage_read", "storage_write", "subnets_read", "subnets_write",
		"infrastructures_read", "infrastructures_write", "templates_read", "templates_write",
		"events_read", "events_write", "job_queue_read", "job_queue_write", "workflows_read",
		"workflows_write", "variables_and_secrets_read", "variables_and_secrets_write",
		"prices_read", "subscriptions_read", "subscriptions_write", "utilization_reports_read",
		"admin_access", "suspend_reasons_read", "suspend_reasons_write",
		"global_configurations_read", "global_configurations_write", "maintenance_read",
		"admin_maintenance_read",
	},
	"basic_admin": {
		"servers_read", "server_types_read", "server_type_utilization_report_read",
		"switches_read", "storage_read", "subnets_read", "infrastructures_read",
		"templates_read", "events_read", "job_queue_read", "workflows_read",
		"variables_and_secrets_read", "prices_read", "subscriptions_read",
		"utilization_reports_read", "suspend_reasons_read", "global_configurations_read",
		"maintenance_read", "admin_maintenance_read", "admin_access",
	},
	"user": set(),
}

# all_permissions is the seed's list of permissions.
all_permissions := {
	"servers_read", "servers_write", "server_types_read", "server_type_utilization_report_read",
	"switches_read", "switches_write", "storage_read", "storage_write", "subnets_read",
	"subnets_write", "infrastructures_read", "infrastructures_write", "templates_read",
	"templates_write", "events_read", "events_write", "job_queue_read", "job_queue_write",
	"workflows_read", "workflows_write", "variables_and_secrets_read", "variables_and_secrets_write",
	"prices_read", "prices_write", "subscriptions_read", "subscriptions_write",
	"utilization_reports_read", "admin_access", "suspend_reasons_read", "suspend_reasons_write",
	"global_configurations_read", "global_configurations_write", "maintenance_read",
	"maintenance_write", "admin_maintenance_read", "admin_maintenance_write",
}

# deprecated_permissions are the seed's "Deprecated permissions, do not use":
# accepted in a custom role, granting nothing.
deprecated_permissions := {
	"cluster_read", "cluster_write", "container_platform_read", "container_platform_write",
	"datalake_read", "datalake_write", "dataset_read", "dataset_write", "cloudinit_read",
	"cloudinit_write", "datastore_read", "datastore_write", "franchises_write", "threshold_write",
	"threshold_read", "monitoring_agent_read", "monitoring_agent_write", "emails_write",
	"resources_write",
}

# permissions of the effective principal.
permissions := builtin_roles[effective.role]

permissions := {p |
	some p in input.facts.roles[effective.role].permissions
	p in all_permissions
} if {
	not builtin_roles[effective.role]
}

has_permission(p) if p in permissions

# rules are the ABAC rules of the effective principal's custom role.
rules := object.get(input.facts.roles, [effective.role, "rules"], [])

# A role is invalid when it is neither built in nor stored, names an unknown
# permission, or carries a malformed rule. (The engine always sets a user's
# role; a user document without one has an invalid role.)
role_invalid(u) if {
	not builtin_roles[u.role]
	not input.facts.roles[u.role]
}

role_invalid(u) if {
	some p in input.facts.roles[u.role].permissions
	not known_permission(p)
}

role_invalid(u) if {
	some r in input.facts.roles[u.role].rules
	not valid_rule(r)
}

known_permission(p) if p in all_permissions

known_permission(p) if p in deprecated_permissions
