package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
)

// JudgeSecret is one of a Pod's pull secrets, a kubernetes.io/dockerconfigjson
// Secret.
type JudgeSecret struct {
	Name string `json:"name"`
	// DockerConfigJSON is the secret's .dockerconfigjson, {"auths":{...}}.
	DockerConfigJSON json.RawMessage `json:"dockerconfigjson,omitempty"`
}

// JudgePod is what the kubelet knows when it pulls a Pod's images: its pull
// secrets, in the order of the Pod's imagePullSecrets, and the images.
type JudgePod struct {
	Secrets []JudgeSecret `json:"secrets"`
	Images  []string      `json:"images"`
}

// JudgeResult is the kubelet's answer for one JudgePod.
type JudgeResult struct {
	// Images has one entry per image of the JudgePod, in order.
	Images []JudgeImage `json:"images"`
	// Error is set when the kubelet cannot read the Pod's secrets (it
	// then fails every pull); Images is empty.
	Error string `json:"error,omitempty"`
}

// JudgeImage is the kubelet's answer for one image.
type JudgeImage struct {
	// Image is the image as the Pod names it.
	Image string `json:"image"`
	// Pulled is the image the kubelet asks the runtime for (with the
	// default tag applied).
	Pulled string `json:"pulled,omitempty"`
	// Lookup is the name the kubelet looks credentials up for: the
	// normalised repository (docker.io/library/nginx for nginx).
	Lookup string `json:"lookup,omitempty"`
	// Credentials are the candidates in the order the kubelet tries them;
	// the runtime stops at the first that works. Empty: an anonymous pull.
	Credentials []JudgeCredential `json:"credentials"`
	// Error is set when the kubelet cannot parse the image.
	Error string `json:"error,omitempty"`
}

// JudgeCredential is one candidate credential.
type JudgeCredential struct {
	// Secret is the pull secret it came from.
	Secret string `json:"secret,omitempty"`
	// Key is the auths key of that secret that served it, as written.
	Key      string `json:"key,omitempty"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// KubeletJudge asks the kubelet's own code (pkg/credentialprovider of
// k8s.io/kubernetes, with no node-wide credentials) which credentials it
// tries for each image of each Pod, in one run of the kubelet-judge binary.
func KubeletJudge(ctx context.Context, pods []JudgePod) ([]JudgeResult, error) {
	bin, err := Bin("kubelet-judge")
	if err != nil {
		return nil, err
	}
	if pods == nil {
		pods = []JudgePod{}
	}
	in, err := json.Marshal(struct {
		Pods []JudgePod `json:"pods"`
	}{pods})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("kubelet-judge: %w: %s", err, stderr.String())
	}
	var res struct {
		Pods []JudgeResult `json:"pods"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("kubelet-judge output: %w", err)
	}
	if len(res.Pods) != len(pods) {
		return nil, fmt.Errorf("kubelet-judge answered %d Pods for %d", len(res.Pods), len(pods))
	}
	return res.Pods, nil
}
