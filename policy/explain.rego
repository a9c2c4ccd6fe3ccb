# explain: the decision with the facts it used and the step that decided,
# for a person to read (?explain=true, pdpctl check --explain).
package metalsoft.authz

explain := object.union(explain_facts, {
	"allow": outcome.allow,
	"reasons": sort(outcome.reasons),
	"step": outcome.step,
	"decided_by": step_descriptions[outcome.step],
})

step_descriptions := {
	"identity": "1. identity: the principal is not a stored user",
	"status": "2. status: an archived or blocked user is denied everything",
	"impersonation": "3. impersonation: the target must exist, the principal must be its account delegate or root, and the target's status applies",
	"impersonation_scope": "3. impersonation scope: with acting_as only billing (read, pay, update), utilization_report read and ui/api access can be granted",
	"role": "3. role: a role that is not stored, names an unknown permission or carries a malformed rule denies its holders",
	"maintenance": "4. maintenance: only holders of admin_access pass while the system is in maintenance (admin_maintenance_write for the admin interface)",
	"deny_rules": "5. deny rules: an inverted ABAC rule of the effective principal's role matches",
	"resource": "6. the infrastructure or user the request names is not stored",
	"guards": "7. guards: the request was granted but a guard denies it (billing, suspension, limits, visibility)",
	"grants": "6. grants: the effective principal holds the rights listed in reasons",
	"no_grant": "8. nothing grants the request",
}

explain_facts["principal"] := principal.id

explain_facts["acting_as"] := input.acting_as if impersonating

explain_facts["effective_principal"] := effective.id

explain_facts["role"] := effective.role

explain_facts["permissions"] := sort(permissions)

explain_facts["resource"] := {"kind": input.resource.kind, "id": resource_id, "attr": attr}

explain_facts["subject_user"] := subject_user_id

explain_facts["owner"] := attr.owner

explain_facts["owner_account_delegates"] := input.facts.users[attr.owner].account_delegates

explain_facts["infrastructure_delegates"] := input.facts.infrastructures[resource_id].delegates

explain_facts["owner_account"] := owner_account.id if deploying

explain_facts["limits"] := {name: {
	"requested": n,
	"usage": object.get(infra_owner, ["usage", name], 0),
	"limit": object.get(limits_found, name, "unlimited"),
} |
	some name, n in requested
} if {
	deploying
	is_object(requested)
}

explain_facts["limits"] := {"requested": requested, "error": "requested is not an object: limit_exceeded"} if {
	deploying
	not is_object(requested)
}

limits_found[name] := limit(name) if {
	is_object(requested)
	requested[name]
}

explain_facts["rules_matched"] := [{"index": i, "rule": r} |
	some i, r in rules
	rule_matches(r)
]

explain_facts["maintenance"] if input.facts.global.maintenance == true
