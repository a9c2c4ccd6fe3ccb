package forwardauth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/metalsoft-io/pdp/pdp"
)

// Identity failures. errNoCredential and errUnknownIdentity answer 401;
// anything wrapping pdp.ErrUnavailable answers 403 state_unavailable.
var (
	errNoCredential    = errors.New("no credential")
	errUnknownIdentity = errors.New("unknown identity")
	errInvalidToken    = fmt.Errorf("%w: invalid token", errUnknownIdentity)
)

// verifier checks JWT bearer tokens against a key set: a file read once,
// or a remote set kept fresh (jwks.go).
type verifier struct {
	source   keySource
	algs     []jose.SignatureAlgorithm
	expected jwt.Expected
	leeway   time.Duration
	// emailVerifiedOptional is JWT.EmailVerifiedOptional.
	emailVerifiedOptional bool
	now                   func() time.Time
}

// claims are the JWT claims read besides the registered ones.
type claims struct {
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
}

// newVerifier loads the JWKS file of j, or starts keeping its JWKS URL
// (given, or discovered from the issuer) fresh.
func newVerifier(j *JWT) (*verifier, error) {
	v := &verifier{
		expected: jwt.Expected{Issuer: j.Issuer, AnyAudience: jwt.Audience(j.Audiences)},
		leeway:   j.leeway,
		now:      time.Now,

		emailVerifiedOptional: j.EmailVerifiedOptional,
	}
	var err error
	if v.source, err = keySourceOf(j); err != nil {
		return nil, err
	}
	for _, a := range j.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	return v, nil
}

// allowedAlgorithm reports whether a is an asymmetric JWS algorithm.
func allowedAlgorithm(a string) bool {
	switch jose.SignatureAlgorithm(a) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512, jose.EdDSA:
		return true
	}
	return false
}

// verify checks the signature and claims of token and returns its subject
// and e-mail claims. The key is chosen by "kid" (without one, only a set of
// exactly one key is used); a key whose own "alg" differs from the token's
// is refused, and go-jose refuses a key of the wrong type for the algorithm,
// so an RSA public key can never serve as an HMAC secret.
func (v *verifier) verify(ctx context.Context, token string) (sub, email string, err error) {
	tok, err := jwt.ParseSigned(token, v.algs)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return "", "", fmt.Errorf("%w: want one signature", errInvalidToken)
	}
	h := tok.Headers[0]
	set, err := v.source.keys(ctx, h.KeyID)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	var key *jose.JSONWebKey
	switch keys := set.Key(h.KeyID); {
	case h.KeyID != "" && len(keys) == 1:
		key = &keys[0]
	case h.KeyID == "" && len(set.Keys) == 1:
		key = &set.Keys[0]
	default:
		return "", "", fmt.Errorf("%w: no key for kid %q", errInvalidToken, h.KeyID)
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return "", "", fmt.Errorf("%w: key %q is for %s, token uses %s", errInvalidToken, key.KeyID, key.Algorithm, h.Algorithm)
	}
	var std jwt.Claims
	var extra claims
	if err := tok.Claims(key.Key, &std, &extra); err != nil {
		return "", "", fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	if std.Expiry == nil {
		return "", "", fmt.Errorf("%w: no exp claim", errInvalidToken)
	}
	if err := std.ValidateWithLeeway(v.expected.WithTime(v.now()), v.leeway); err != nil {
		return "", "", fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	if verified := extra.EmailVerified; verified == nil && !v.emailVerifiedOptional || verified != nil && !*verified {
		extra.Email = "" // an address the identity provider did not verify names nobody
	}
	if std.Subject == "" && extra.Email == "" {
		return "", "", fmt.Errorf("%w: neither sub nor email claim", errInvalidToken)
	}
	return std.Subject, extra.Email, nil
}

// identify finds the user a forwarded request speaks for, in the order API
// key, JWT, trusted header. The first credential presented decides: a bad
// API key or token is not retried as another kind of credential.
func (a *Authorizer) identify(ctx context.Context, h Headers, trusted bool) (*pdp.User, error) {
	u, err := a.identifyBy(ctx, h, trusted)
	if errors.Is(err, errRepeatedHeader) {
		err = fmt.Errorf("%w: %w", errUnknownIdentity, err)
	}
	return u, err
}

// identifyBy is identify; a repeated credential header is errRepeatedHeader.
func (a *Authorizer) identifyBy(ctx context.Context, h Headers, trusted bool) (*pdp.User, error) {
	key, err := single(h, a.cfg.Identity.APIKeyHeader)
	if err != nil {
		return nil, err
	}
	if key != "" {
		return found(a.facts.UserByAPIKey(ctx, pdp.APIKeyDigest(key)))
	}
	authz, err := single(h, "Authorization")
	if err != nil {
		return nil, err
	}
	// Another scheme (Basic) belongs to an authenticating proxy in front
	// and is not a credential for pdp.
	if scheme, token, _ := strings.Cut(authz, " "); strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token == "" {
			return nil, fmt.Errorf("%w: empty bearer token", errUnknownIdentity)
		}
		return a.bearer(ctx, token)
	}
	if a.cfg.Identity.DisableTrustedHeader || !trusted {
		return nil, errNoCredential
	}
	name, err := single(h, a.cfg.Identity.TrustedHeader)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errNoCredential
	}
	return a.userByIDOrEmail(ctx, name, true, "")
}

// bearer identifies a bearer token: an API key first, then a JWT.
func (a *Authorizer) bearer(ctx context.Context, token string) (*pdp.User, error) {
	u, err := a.facts.UserByAPIKey(ctx, pdp.APIKeyDigest(token))
	if err != nil || u != nil {
		return u, err
	}
	if a.jwt == nil || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: unknown API key", errUnknownIdentity)
	}
	sub, email, err := a.jwt.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	return a.userByIDOrEmail(ctx, sub, a.cfg.Identity.JWT.SubjectAsEmail, email)
}

// userByIDOrEmail finds a user by id, else by e-mail: first (as an e-mail
// address too when firstEmail and it has an @), then email.
func (a *Authorizer) userByIDOrEmail(ctx context.Context, first string, firstEmail bool, email string) (*pdp.User, error) {
	if first != "" {
		u, err := a.facts.User(ctx, first)
		if err != nil || u != nil {
			return u, err
		}
		if firstEmail && strings.Contains(first, "@") {
			if u, err = a.facts.UserByEmail(ctx, first); err != nil || u != nil {
				return u, err
			}
		}
	}
	if email != "" {
		return found(a.facts.UserByEmail(ctx, email))
	}
	return nil, errUnknownIdentity
}

// found turns a not-stored answer into errUnknownIdentity.
func found(u *pdp.User, err error) (*pdp.User, error) {
	if err == nil && u == nil {
		err = errUnknownIdentity
	}
	return u, err
}
