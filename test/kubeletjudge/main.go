//go:build ignore

// kubelet-judge answers, with the kubelet's own code, which credentials the
// kubelet tries for an image, in the order it tries them, given a Pod's pull
// secrets and no node-wide credentials.
//
// It is not part of regcred's module: test/testbed/build.sh copies this file
// into a throwaway module that requires k8s.io/kubernetes (and replaces its
// staging modules with their published versions), and builds it.
//
// Input on stdin, one Pod or a batch:
//
//	{"secrets":[{"name":"a","dockerconfigjson":{"auths":{...}}}],"images":["nginx"]}
//	{"pods":[{"secrets":[...],"images":[...]}, ...]}
//
// Output on stdout, in the same shape:
//
//	{"images":[{"image":"nginx","pulled":"nginx:latest","lookup":"docker.io/library/nginx",
//	  "credentials":[{"secret":"a","key":"docker.io","username":"u","password":"p"}]}]}
//	{"pods":[{...}, ...]}
//
// A Pod whose secrets the kubelet cannot read has "error" and no images; an
// image the kubelet cannot parse has "error" and no credentials.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/kubernetes/pkg/credentialprovider"
	"k8s.io/kubernetes/pkg/credentialprovider/secrets"
	"k8s.io/kubernetes/pkg/util/parsers"
)

type secretIn struct {
	Name             string          `json:"name"`
	DockerConfigJSON json.RawMessage `json:"dockerconfigjson,omitempty"`
}

type podIn struct {
	Secrets []secretIn `json:"secrets"`
	Images  []string   `json:"images"`
}

type input struct {
	podIn
	Pods []podIn `json:"pods,omitempty"`
}

type credential struct {
	Secret   string `json:"secret,omitempty"`
	Key      string `json:"key,omitempty"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type imageOut struct {
	Image       string       `json:"image"`
	Pulled      string       `json:"pulled,omitempty"`
	Lookup      string       `json:"lookup,omitempty"`
	Credentials []credential `json:"credentials"`
	Error       string       `json:"error,omitempty"`
}

type podOut struct {
	Images []imageOut `json:"images"`
	Error  string     `json:"error,omitempty"`
}

func main() {
	var in input
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-judge: reading input:", err)
		os.Exit(2)
	}
	var out any
	if in.Pods != nil {
		pods := make([]podOut, len(in.Pods))
		for i, p := range in.Pods {
			pods[i] = judge(p)
		}
		out = map[string]any{"pods": pods}
	} else {
		out = judge(in.podIn)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-judge:", err)
		os.Exit(1)
	}
}

// judge does for each image what the kubelet's image manager does
// (pkg/kubelet/images/image_manager.go, EnsureImageExists and
// makeLookupPullCredentialsFunc), with an empty node keyring and no
// credential provider plugins.
func judge(p podIn) podOut {
	plain, err := keyring(p.Secrets, nil)
	if err != nil {
		return podOut{Error: err.Error()}
	}
	// A second keyring whose entries carry a tag in their email, the one
	// field that matching ignores, to tell which auths key served.
	var tags []credential
	tagged, err := keyring(p.Secrets, &tags)
	if err != nil {
		tagged = nil
	}
	out := podOut{Images: []imageOut{}}
	for _, requested := range p.Images {
		out.Images = append(out.Images, lookup(requested, plain, tagged, tags))
	}
	return out
}

// lookup answers for one image; tagged (nil: unknown) labels the credentials.
func lookup(requested string, plain, tagged credentialprovider.DockerKeyring, tags []credential) imageOut {
	res := imageOut{Image: requested, Credentials: []credential{}}
	// EnsureImageExists: applyDefaultImageTag.
	image, err := applyDefaultImageTag(requested)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Pulled = image
	// makeLookupPullCredentialsFunc: ParseImageName, then Lookup.
	repoToPull, _, _, err := parsers.ParseImageName(image)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Lookup = repoToPull
	creds, _ := plain.Lookup(repoToPull)
	var marks []credentialprovider.TrackedAuthConfig
	if tagged != nil {
		marks, _ = tagged.Lookup(repoToPull)
	}
	for i, c := range creds {
		cred := credential{Username: c.Username, Password: c.Password}
		if c.Source != nil && c.Source.Secret != nil {
			cred.Secret = c.Source.Secret.Name
		}
		if len(marks) == len(creds) && marks[i].Username == c.Username && marks[i].Password == c.Password {
			if n, ok := strings.CutPrefix(marks[i].Email, tagPrefix); ok {
				if k, err := strconv.Atoi(n); err == nil && k >= 0 && k < len(tags) {
					cred.Secret, cred.Key = tags[k].Secret, tags[k].Key
				}
			}
		}
		res.Credentials = append(res.Credentials, cred)
	}
	return res
}

const tagPrefix = "kubelet-judge-tag-"

// keyring builds the Pod's keyring the way the kubelet does:
// secrets.MakeDockerKeyring over the Pod's pull secrets in their order,
// united with an empty default keyring. With tags, every auths entry's email
// is replaced by a tag indexing *tags.
func keyring(in []secretIn, tags *[]credential) (credentialprovider.DockerKeyring, error) {
	pullSecrets := make([]corev1.Secret, 0, len(in))
	for _, s := range in {
		data := []byte(s.DockerConfigJSON)
		if tags != nil {
			var err error
			if data, err = tag(s.Name, data, tags); err != nil {
				return nil, err
			}
		}
		pullSecrets = append(pullSecrets, corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: "default"},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
		})
	}
	empty := credentialprovider.UnionDockerKeyring{&credentialprovider.BasicDockerKeyring{}}
	return secrets.MakeDockerKeyring(pullSecrets, empty)
}

// tag rewrites a dockerconfigjson so that each auths entry's email names
// its secret and key.
func tag(secret string, data []byte, tags *[]credential) ([]byte, error) {
	if len(data) == 0 {
		return data, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	for field, raw := range top {
		if !strings.EqualFold(field, "auths") {
			continue
		}
		var auths map[string]map[string]any
		if err := json.Unmarshal(raw, &auths); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(auths))
		for k := range auths {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if auths[k] == nil {
				auths[k] = map[string]any{}
			}
			for f := range auths[k] {
				if strings.EqualFold(f, "email") {
					delete(auths[k], f)
				}
			}
			auths[k]["email"] = tagPrefix + strconv.Itoa(len(*tags))
			*tags = append(*tags, credential{Secret: secret, Key: k})
		}
		b, err := json.Marshal(auths)
		if err != nil {
			return nil, err
		}
		top[field] = b
	}
	return json.Marshal(top)
}

// applyDefaultImageTag is the kubelet's (pkg/kubelet/images), unexported there.
func applyDefaultImageTag(image string) (string, error) {
	_, tag, digest, err := parsers.ParseImageName(image)
	if err != nil {
		return "", err
	}
	if len(digest) == 0 && len(tag) > 0 && !strings.HasSuffix(image, ":"+tag) {
		image = image + ":" + tag
	}
	return image, nil
}
