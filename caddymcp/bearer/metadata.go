package bearer

// Protected Resource Metadata (RFC 9728): where it is served and what it says.

import (
	"net/http"

	"github.com/caddymcp/caddymcp/caddymcp/internal/dpop"
	"github.com/caddymcp/caddymcp/caddymcp/internal/web"
)

// PRMPath is where RFC 9728 metadata lives (plus the resource's path).
const PRMPath = "/.well-known/oauth-protected-resource"

// IsMetadataPath reports whether path is one of the two URLs at which
// this resource's metadata is served: the path-suffixed one and the root
// one (RFC 9728 §3.1; MCP clients try both).
func (rs *Resource) IsMetadataPath(path string) bool {
	return path == rs.wellKnown || path == PRMPath
}

// identity returns the resource identifier, its metadata URL and the
// public origin (the one clients address, for DPoP's htu) for a request.
func (rs *Resource) identity(r *http.Request) (resource, metadataURL, origin string, err error) {
	origin = rs.rootOrigin
	if !rs.absolute {
		origin = rs.cfg.BaseOrigin
		if origin == "" {
			if origin, err = web.RequestOrigin(r); err != nil {
				return "", "", "", err
			}
		}
		resource = origin + rs.path
	} else {
		resource = rs.cfg.Resource
	}
	if resource == origin {
		// RFC 3986 §6.2.3: "https://h" and "https://h/" are the same
		// resource; publish the form without the slash.
		resource = origin
	}
	return resource, origin + rs.wellKnown, origin, nil
}

// PRM is the protected resource metadata document (RFC 9728 §2).
type PRM struct {
	// Resource is the resource identifier.
	Resource string `json:"resource"`
	// AuthorizationServers are issuer identifiers.
	AuthorizationServers []string `json:"authorization_servers"`
	// ScopesSupported lists the scopes used at this resource.
	ScopesSupported []string `json:"scopes_supported"`
	// BearerMethodsSupported is ["header"]: tokens are accepted only in
	// the Authorization header (RFC 6750 §2.1).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a human-readable name.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is a URL of developer documentation.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// DPoPSigningAlgValuesSupported lists the algorithms accepted for
	// DPoP proofs (RFC 9728 §2, RFC 9449).
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported"`
	// DPoPBoundAccessTokensRequired is true when the resource accepts
	// DPoP-bound access tokens only (RFC 9728 §2).
	DPoPBoundAccessTokensRequired bool `json:"dpop_bound_access_tokens_required"`
}

// Metadata returns the metadata document for a request.
func (rs *Resource) Metadata(r *http.Request) (PRM, error) {
	resource, _, _, err := rs.identity(r)
	if err != nil {
		return PRM{}, err
	}
	servers := rs.cfg.AuthorizationServers
	if len(servers) == 0 {
		origin, err := web.RequestOrigin(r)
		if err != nil {
			return PRM{}, err
		}
		servers = []string{origin}
	}
	return PRM{
		Resource:                      resource,
		AuthorizationServers:          servers,
		ScopesSupported:               rs.cfg.Scopes,
		BearerMethodsSupported:        []string{"header"},
		ResourceName:                  rs.cfg.ResourceName,
		ResourceDocumentation:         rs.cfg.ResourceDocumentation,
		DPoPSigningAlgValuesSupported: dpop.Algorithms,
		DPoPBoundAccessTokensRequired: rs.cfg.RequireDPoP,
	}, nil
}

// ServeMetadata answers a request for the metadata document.
func (rs *Resource) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	if !web.ServePublicGet(w, r) {
		return
	}
	doc, err := rs.Metadata(r)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	web.WriteJSON(w, http.StatusOK, doc, "public, max-age=300")
}
