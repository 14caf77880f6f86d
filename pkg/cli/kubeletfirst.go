package cli

// kubeletFirst names the credential the kubelet will try first to pull
// image, given the Pod's imagePullSecrets in order (those regcred injects
// included): which of their keys matches the image best, as the kubelet
// matches credential keys.
//
// Not known yet: the kubelet's key matching is being added to pkg/image as
// a pure function. Once it is, this is the one call to wire (it needs each
// secret's keys: for regcred's own secrets they follow from the registry's
// location, as pullsecret.Render writes them). Until then it returns nil,
// which explain prints as "-" and as null in -o json (kubeletFirst).
func kubeletFirst(image string, pullSecrets []string) *string {
	_, _ = image, pullSecrets
	return nil
}
