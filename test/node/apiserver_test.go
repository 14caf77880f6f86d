package node

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regcred/regcred/test/testbed"
)

// whoAmISource asks the API server who its Pod is, as an in-cluster
// client does: the address from KUBERNETES_SERVICE_HOST and _PORT, the
// CA and the token the kubelet mounts (kube-root-ca.crt, a TokenRequest).
// The answer, or the error, is its termination message.
const whoAmISource = `package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
)

const dir = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	msg, err := whoAmI()
	if err != nil {
		msg = err.Error()
	}
	_ = os.WriteFile("/dev/termination-log", []byte(msg), 0o644)
	if err != nil {
		os.Exit(1)
	}
}

func whoAmI() (string, error) {
	token, err := os.ReadFile(dir + "token")
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(dir + "ca.crt")
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return "", fmt.Errorf("no certificate in %sca.crt", dir)
	}
	host := net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))
	req, err := http.NewRequest(http.MethodPost, "https://"+host+"/apis/authentication.k8s.io/v1/selfsubjectreviews",
		bytes.NewReader([]byte(` + "`" + `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}` + "`" + `)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var review struct {
		Status struct {
			UserInfo struct{ Username string } ` + "`json:\"userInfo\"`" + `
		} ` + "`json:\"status\"`" + `
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("%s answered %s", host, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}
`

// A Pod reaches the API server as its ServiceAccount, the way regcred's
// own Pods do: at the node's address, which the API server's certificate
// covers, with the token and CA the kubelet mounts.
func TestPodReachesAPIServer(t *testing.T) {
	b := getBed(t)
	ns := b.namespace(t)
	ctx := t.Context()

	program, err := testbed.GoProgram(ctx, whoAmISource)
	require.NoError(t, err)
	_, err = testbed.PushImage(ctx, b.reg, "team/whoami", "v1", user, password, testbed.Image{
		Files:      []testbed.File{{Path: "/whoami", Content: program}},
		Entrypoint: []string{"/whoami"},
	})
	require.NoError(t, err)
	secret := b.pullSecret(t, ns, "pull", password)

	start := time.Now()
	_, err = b.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "whoami"},
		Spec: corev1.PodSpec{
			RestartPolicy:    corev1.RestartPolicyNever,
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: secret}},
			Containers: []corev1.Container{{
				Name: "whoami", Image: b.reg.Host + "/team/whoami:v1", Env: b.node.PodAPIServerEnv(),
			}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	p := b.waitPod(t, ns, "whoami", 2*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	require.NotEmpty(t, p.Status.ContainerStatuses)
	term := p.Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, term, describe(p))
	t.Logf("Pod asked the API server at %s who it is, in %s: %q", b.node.APIServer, since(start), term.Message)
	assert.Equal(t, corev1.PodSucceeded, p.Status.Phase, term.Message)
	assert.Equal(t, "system:serviceaccount:"+ns+":default", term.Message)
}
