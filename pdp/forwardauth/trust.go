package forwardauth

import "net/netip"

// Trusts reports whether addr is a trusted proxy address
// (Config.TrustedProxies). Front ends that carry the peer of the original
// request separately (Envoy's gRPC check) use it to decide which address to
// hand to Authorize.
func (a *Authorizer) Trusts(addr netip.Addr) bool {
	return addr.IsValid() && a.cfg.trusted(addr)
}
