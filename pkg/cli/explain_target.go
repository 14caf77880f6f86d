package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// target is what explain explains: a Pod, or the Pod template of a
// workload, whose Pods the webhook will see.
type target struct {
	// Kind, Name and Namespace are the object's: a Pod or a workload.
	Kind, Name, Namespace string
	// Live is set for an object read from the cluster; a manifest's
	// object may not exist yet.
	Live bool
	// Pod is the Pod, or one made of the template, as the webhook would
	// see it.
	Pod corev1.Pod
}

// kinds maps the resource names kubectl accepts to the kinds explain
// reads.
var kinds = map[string]string{
	"pod": "Pod", "pods": "Pod", "po": "Pod",
	"deployment": "Deployment", "deployments": "Deployment", "deploy": "Deployment",
	"statefulset": "StatefulSet", "statefulsets": "StatefulSet", "sts": "StatefulSet",
	"daemonset": "DaemonSet", "daemonsets": "DaemonSet", "ds": "DaemonSet",
	"replicaset": "ReplicaSet", "replicasets": "ReplicaSet", "rs": "ReplicaSet",
	"job": "Job", "jobs": "Job",
	"cronjob": "CronJob", "cronjobs": "CronJob", "cj": "CronJob",
}

const kindList = "pod, deployment, statefulset, daemonset, replicaset, job or cronjob"

// parseRef reads TYPE NAME or TYPE/NAME.
func parseRef(args []string) (kind, name string, err error) {
	var typ string
	switch {
	case len(args) == 1 && strings.Contains(args[0], "/"):
		typ, name, _ = strings.Cut(args[0], "/")
	case len(args) == 2 && !strings.Contains(args[0], "/"):
		typ, name = args[0], args[1]
	case len(args) == 1:
		return "", "", usageError{fmt.Errorf("name the object: %s NAME, or %s/NAME", args[0], args[0])}
	default:
		return "", "", usageError{errors.New("explain one object: TYPE NAME or TYPE/NAME (or -f FILE)")}
	}
	// deployment.apps, jobs.batch/v1: the group (and version) may follow.
	typ, _, _ = strings.Cut(strings.ToLower(typ), ".")
	kind, ok := kinds[typ]
	switch {
	case !ok:
		return "", "", usageError{fmt.Errorf("%q: explain reads a %s", typ, kindList)}
	case name == "":
		return "", "", usageError{fmt.Errorf("name the %s to explain", typ)}
	}
	return kind, name, nil
}

// emptyObject returns an empty object of kind.
func emptyObject(kind string) client.Object {
	switch kind {
	case "Pod":
		return &corev1.Pod{}
	case "Deployment":
		return &appsv1.Deployment{}
	case "StatefulSet":
		return &appsv1.StatefulSet{}
	case "DaemonSet":
		return &appsv1.DaemonSet{}
	case "ReplicaSet":
		return &appsv1.ReplicaSet{}
	case "Job":
		return &batchv1.Job{}
	case "CronJob":
		return &batchv1.CronJob{}
	}
	return nil
}

// getTarget reads an object from the cluster.
func getTarget(ctx context.Context, c client.Reader, kind, namespace, name string) (*target, error) {
	obj := emptyObject(kind)
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%s %q not found in namespace %q", kind, name, namespace)
		}
		return nil, fmt.Errorf("reading %s %s/%s: %w", kind, namespace, name, err)
	}
	t := toTarget(obj)
	t.Live = true
	return t, nil
}

// toTarget returns the Pod, or a Pod made of the workload's template;
// nil for any other object.
func toTarget(obj runtime.Object) *target {
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *corev1.Pod:
		return &target{Kind: "Pod", Name: o.Name, Namespace: o.Namespace, Pod: *o}
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
	case *appsv1.DaemonSet:
		tmpl = &o.Spec.Template
	case *appsv1.ReplicaSet:
		tmpl = &o.Spec.Template
	case *batchv1.Job:
		tmpl = &o.Spec.Template
	case *batchv1.CronJob:
		tmpl = &o.Spec.JobTemplate.Spec.Template
	default:
		return nil
	}
	meta := obj.(client.Object)
	kind := fmt.Sprintf("%T", obj)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	pod := corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
	pod.Namespace = meta.GetNamespace()
	return &target{Kind: kind, Name: meta.GetName(), Namespace: meta.GetNamespace(), Pod: pod}
}

// readTargets reads every Pod and workload of a manifest file (YAML or
// JSON, one or more documents, or a List), and the labels of the
// Namespaces it defines; other objects are skipped.
func readTargets(r io.Reader) ([]*target, map[string]map[string]string, error) {
	namespaces := map[string]map[string]string{}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []*target
	var skipped []string
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 || isComment(doc) {
			continue
		}
		obj, unknown, err := decodeObject(doc)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("not a Kubernetes object: %w", err)
		case unknown != "":
			skipped = append(skipped, unknown)
			continue
		}
		objs := []runtime.Object{obj}
		if _, ok := obj.(*corev1.List); !ok && meta.IsListType(obj) {
			// A typed list (PodList, DeploymentList), as kubectl get
			// prints one: its items are objects already.
			if objs, err = meta.ExtractList(obj); err != nil {
				return nil, nil, fmt.Errorf("a %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, err)
			}
		}
		if list, ok := obj.(*corev1.List); ok {
			objs = objs[:0]
			for _, item := range list.Items {
				o, unknown, err := decodeObject(item.Raw)
				switch {
				case err != nil:
					return nil, nil, fmt.Errorf("an item of the List: %w", err)
				case unknown != "":
					skipped = append(skipped, unknown)
					continue
				}
				objs = append(objs, o)
			}
		}
		for _, o := range objs {
			if ns, ok := o.(*corev1.Namespace); ok {
				namespaces[ns.Name] = ns.Labels
				skipped = append(skipped, "Namespace")
				continue
			}
			if t := toTarget(o); t != nil {
				out = append(out, t)
			} else {
				skipped = append(skipped, kindOf(o))
			}
		}
	}
	if len(out) == 0 {
		msg := "holds no Pod nor workload (" + kindList + ")"
		if len(skipped) > 0 {
			msg += "; it holds " + strings.Join(skipped, ", ")
		}
		return nil, nil, errors.New(msg)
	}
	return out, namespaces, nil
}

// kindOf is an object's kind: its own, or its Go type's name (the items of
// a typed list carry none).
func kindOf(o runtime.Object) string {
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	k := fmt.Sprintf("%T", o)
	return k[strings.LastIndex(k, ".")+1:]
}

// decodeObject decodes one object of a manifest (YAML or JSON). An object
// of a kind the scheme does not know (a custom resource) is no Pod nor
// workload: decodeObject returns its kind as unknown, to skip it.
func decodeObject(doc []byte) (obj runtime.Object, unknown string, err error) {
	obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
	switch {
	case err == nil:
		return obj, "", nil
	case !runtime.IsNotRegisteredError(err):
		return nil, "", err // a known kind, malformed, is no object to skip
	case gvk != nil && gvk.Kind != "":
		return nil, gvk.Kind, nil
	}
	// From YAML the decoder returns no kind with the error: read it.
	var tm metav1.TypeMeta
	if yaml.Unmarshal(doc, &tm) != nil || tm.Kind == "" {
		return nil, "", err
	}
	return nil, tm.Kind, nil
}

// isComment reports whether a YAML document holds only comments.
func isComment(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}
