package admission

import (
	"context"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	kjson "sigs.k8s.io/json"

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
}

var _ admission.Handler = (*SecretEvents)(nil)

// secretMeta is what SecretEvents reads of a Secret: its labels.
type secretMeta struct {
	Metadata struct {
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
}

// Handle allows the request and, for a change to one of regcred's pull
// secrets, has it restored.
func (s *SecretEvents) Handle(ctx context.Context, req admission.Request) admission.Response {
	allowed := admission.Allowed("")
	if req.Kind.Group != "" || req.Kind.Kind != "Secret" || ptr.Deref(req.DryRun, false) || req.UserInfo.Username == s.Self {
		return allowed
	}
	if req.Operation != admissionv1.Update && req.Operation != admissionv1.Delete {
		return allowed
	}
	var old secretMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(req.OldObject.Raw, &old); err != nil {
		return allowed
	}
	labels := old.Metadata.Labels
	registry := labels[pullsecret.LabelRegistry]
	if labels[pullsecret.LabelManagedBy] != pullsecret.ManagedBy || registry == "" {
		return allowed
	}
	logr.FromContextOrDiscard(ctx).Info("A pull secret was changed by someone else; it will be written again",
		"secret", klog.KRef(req.Namespace, req.Name), "registry", registry, "operation", req.Operation, "user", req.UserInfo.Username)
	s.Restore(req.Namespace, req.Name)
	return allowed
}
