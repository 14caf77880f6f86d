package admission

import (
	"context"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"

	"github.com/regcred/regcred/pkg/pullsecret"
)

// SecretEvents is told by the API server of every update and delete of a
// pull secret regcred made, by anyone but regcred (a validating webhook
// selected by regcred's label). It never denies anything: it has the pull
// secret written again, so that one deleted or edited by hand is restored
// within seconds, without regcred reading or watching any Secret.
type SecretEvents struct {
	// Restore asks for a pull secret in a namespace to be written again.
	Restore func(namespace, secret string)
	// Self is regcred's own user name: its own writes are not reported
	// (the webhook's matchConditions leave them out too).
	Self string
	// Log is where it logs.
	Log logr.Logger
}

var _ http.Handler = (*SecretEvents)(nil)

// ServeHTTP answers one AdmissionReview of a Secret: it allows it and,
// for a change to one of regcred's pull secrets, has it restored.
func (s *SecretEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveReview(w, r, readOldObjectLabels, s.Log, s.review)
}

func (s *SecretEvents) review(_ context.Context, req *request) reply {
	if req.group != "" || req.kind != "Secret" || req.isDryRun() || req.username == s.Self {
		return allowed()
	}
	if req.operation != "UPDATE" && req.operation != "DELETE" {
		return allowed()
	}
	if !req.hasOldObject || req.oldErr != nil {
		return allowed()
	}
	labels := req.oldLabels
	registry := labels[pullsecret.LabelRegistry]
	if labels[pullsecret.LabelManagedBy] != pullsecret.ManagedBy || registry == "" {
		return allowed()
	}
	s.Log.Info("A pull secret was changed by someone else; it will be written again",
		"secret", klog.KRef(req.namespace, req.name), "registry", registry, "operation", req.operation, "user", req.username)
	s.Restore(req.namespace, req.name)
	return allowed()
}
