package statefile

// Permission names a custom role may list (seed "Managing users and
// permissions", docs/model.md "Admin resources"). The policy package in policy/
// is the authority on what each grants; these lists only let the state file
// warn about a name the policy will treat as unknown (role_invalid). They
// are kept here because the policy package exports no list of its own.
var (
	// knownPermissions are the permissions of the RBAC table, those marked
	// deprecated in it included.
	knownPermissions = []string{
		"servers_read", "servers_write",
		"server_types_read",
		"server_type_utilization_report_read",
		"switches_read", "switches_write",
		"storage_read", "storage_write",
		"subnets_read", "subnets_write",
		"infrastructures_read", "infrastructures_write",
		"templates_read", "templates_write",
		"events_read", "events_write",
		"job_queue_read", "job_queue_write",
		"workflows_read", "workflows_write",
		"variables_and_secrets_read", "variables_and_secrets_write",
		"prices_read", "prices_write",
		"subscriptions_read", "subscriptions_write",
		"utilization_reports_read",
		"admin_access",
		"suspend_reasons_read", "suspend_reasons_write",
		"global_configurations_read", "global_configurations_write",
		"maintenance_read", "maintenance_write",
		"admin_maintenance_read", "admin_maintenance_write",
	}
	// deprecatedPermissions are the seed's "Deprecated permissions, do not
	// use": accepted in a role, granting nothing.
	deprecatedPermissions = []string{
		"cluster_read", "cluster_write",
		"container_platform_read", "container_platform_write",
		"datalake_read", "datalake_write",
		"dataset_read", "dataset_write",
		"cloudinit_read", "cloudinit_write",
		"datastore_read", "datastore_write",
		"franchises_write",
		"threshold_read", "threshold_write",
		"monitoring_agent_read", "monitoring_agent_write",
		"emails_write",
		"resources_write",
	}
)

// permissionStatus classifies a permission name.
type permissionStatus int

const (
	permissionUnknown permissionStatus = iota
	permissionKnown
	permissionDeprecated
)

var permissionIndex = func() map[string]permissionStatus {
	m := make(map[string]permissionStatus, len(knownPermissions)+len(deprecatedPermissions))
	for _, p := range knownPermissions {
		m[p] = permissionKnown
	}
	for _, p := range deprecatedPermissions {
		m[p] = permissionDeprecated
	}
	return m
}()
