// Package functions turns the OpenFaaS provider API into Kubernetes objects in the
// function namespace, as faas-netes does: a function is a Deployment and a Service of the
// same name, labelled faas_function=<name>; its status is read back from the Deployment.
package functions

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// FunctionLabel marks a Deployment, its pods and its Service as a function's.
	FunctionLabel = "faas_function"
	// minScaleLabel is stack.yml's com.openfaas.scale.min: the replicas a new function starts with.
	minScaleLabel = "com.openfaas.scale.min"
	// WatchdogPort is where of-watchdog listens in every function container.
	WatchdogPort = 8080
	// secretsMountPath is where OpenFaaS functions read their secrets, one file per secret.
	secretsMountPath = "/var/openfaas/secrets"
	// nonRootUser is the uid faas-netes runs functions as with set_nonroot_user.
	nonRootUser = int64(12000)
)

// Options are the cluster-wide settings every function's Deployment gets (the chart passes
// them to faas-netes as environment variables; cmd reads the same names).
type Options struct {
	Namespace       string
	ImagePullPolicy corev1.PullPolicy
	HTTPProbe       bool
	SetNonRootUser  bool
	Readiness       Probe
	Liveness        Probe
}

// Probe is one probe's timing, in seconds.
type Probe struct {
	InitialDelaySeconds int32
	TimeoutSeconds      int32
	PeriodSeconds       int32
	SuccessThreshold    int32
	FailureThreshold    int32
}

// BadRequest is an error in the caller's request: the handlers answer it with 400.
type BadRequest struct{ msg string }

func (e *BadRequest) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &BadRequest{msg: fmt.Sprintf(format, args...)}
}

// Validate reports every problem of a deployment request at once.
func Validate(req types.FunctionDeployment) error {
	var problems []string
	if req.Service == "" {
		problems = append(problems, "service is required")
	} else if !isDNSLabel(req.Service) {
		problems = append(problems, fmt.Sprintf("service %q must be a DNS label (lower-case letters, digits and '-', at most 63)", req.Service))
	}
	if req.Image == "" {
		problems = append(problems, "image is required")
	}
	for _, c := range req.Constraints {
		if k, _, ok := strings.Cut(c, "="); !ok || strings.TrimSpace(k) == "" {
			problems = append(problems, fmt.Sprintf("constraint %q must be key=value", c))
		}
	}
	for _, r := range []*types.FunctionResources{req.Limits, req.Requests} {
		if _, err := resourceList(r); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if labels := req.Labels; labels != nil {
		if v, ok := (*labels)[minScaleLabel]; ok {
			if n, err := strconv.Atoi(v); err != nil || n < 0 {
				problems = append(problems, fmt.Sprintf("label %s=%q must be a whole number >= 0", minScaleLabel, v))
			}
		}
	}
	if len(problems) > 0 {
		return badRequest("%s", strings.Join(problems, "; "))
	}
	return nil
}

func isDNSLabel(s string) bool {
	if len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// minReplicas is the function's com.openfaas.scale.min, 1 when unset.
func minReplicas(req types.FunctionDeployment) int32 {
	if req.Labels != nil {
		if n, err := strconv.Atoi((*req.Labels)[minScaleLabel]); err == nil && n >= 0 {
			return int32(n)
		}
	}
	return 1
}

func podLabels(req types.FunctionDeployment) map[string]string {
	labels := map[string]string{}
	if req.Labels != nil {
		for k, v := range *req.Labels {
			labels[k] = v
		}
	}
	labels[FunctionLabel] = req.Service
	return labels
}

func annotations(req types.FunctionDeployment) map[string]string {
	out := map[string]string{}
	if req.Annotations != nil {
		for k, v := range *req.Annotations {
			out[k] = v
		}
	}
	return out
}

// Deployment is the function's Deployment with the given replicas.
func (o Options) Deployment(req types.FunctionDeployment, replicas int32) (*appsv1.Deployment, error) {
	container, err := o.container(req)
	if err != nil {
		return nil, err
	}
	var nodeSelector map[string]string
	for _, c := range req.Constraints {
		k, v, _ := strings.Cut(c, "=")
		if nodeSelector == nil {
			nodeSelector = map[string]string{}
		}
		nodeSelector[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	volumes := []corev1.Volume{}
	if req.ReadOnlyRootFilesystem {
		volumes = append(volumes, corev1.Volume{Name: "temp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	if len(req.Secrets) > 0 {
		sources := make([]corev1.VolumeProjection, 0, len(req.Secrets))
		for _, name := range req.Secrets {
			sources = append(sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: name},
			}})
		}
		volumes = append(volumes, corev1.Volume{Name: "secrets", VolumeSource: corev1.VolumeSource{
			Projected: &corev1.ProjectedVolumeSource{Sources: sources},
		}})
	}
	maxUnavailable, maxSurge := intstr.FromInt32(0), intstr.FromInt32(1)
	falseValue := false
	grace := int64(terminationGrace(req.EnvVars).Seconds())
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        req.Service,
			Namespace:   o.Namespace,
			Labels:      podLabels(req),
			Annotations: annotations(req),
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{FunctionLabel: req.Service}},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			RevisionHistoryLimit: ptr(int32(5)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(req), Annotations: annotations(req)},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{container},
					Volumes:                       volumes,
					NodeSelector:                  nodeSelector,
					TopologySpreadConstraints:     spreadOverNodes(req.Service),
					EnableServiceLinks:            &falseValue,
					AutomountServiceAccountToken:  &falseValue,
					TerminationGracePeriodSeconds: &grace,
				},
			},
		},
	}, nil
}

// spreadOverNodes asks the scheduler to put a function's replicas on different nodes where it
// can (a preference, never a reason to leave one pending), so that losing a node leaves
// replicas elsewhere serving while the lost ones are replaced.
func spreadOverNodes(function string) []corev1.TopologySpreadConstraint {
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       "kubernetes.io/hostname",
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: map[string]string{FunctionLabel: function}},
	}}
}

func (o Options) container(req types.FunctionDeployment) (corev1.Container, error) {
	limits, err := resourceList(req.Limits)
	if err != nil {
		return corev1.Container{}, err
	}
	requests, err := resourceList(req.Requests)
	if err != nil {
		return corev1.Container{}, err
	}
	var env []corev1.EnvVar
	if req.EnvProcess != "" {
		env = append(env, corev1.EnvVar{Name: "fprocess", Value: req.EnvProcess})
	}
	names := make([]string, 0, len(req.EnvVars))
	for k := range req.EnvVars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, corev1.EnvVar{Name: k, Value: req.EnvVars[k]})
	}
	c := corev1.Container{
		Name:            req.Service,
		Image:           req.Image,
		ImagePullPolicy: o.ImagePullPolicy,
		Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: WatchdogPort, Protocol: corev1.ProtocolTCP}},
		Env:             env,
		Resources:       corev1.ResourceRequirements{Limits: limits, Requests: requests},
		ReadinessProbe:  o.probe(o.Readiness, readyPath),
		LivenessProbe:   o.probe(o.Liveness, healthPath),
		SecurityContext: &corev1.SecurityContext{
			ReadOnlyRootFilesystem:   &req.ReadOnlyRootFilesystem,
			AllowPrivilegeEscalation: ptr(false),
		},
	}
	if o.SetNonRootUser {
		c.SecurityContext.RunAsUser = ptr(nonRootUser)
	}
	if req.ReadOnlyRootFilesystem {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "temp", MountPath: "/tmp"})
	}
	if len(req.Secrets) > 0 {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "secrets", MountPath: secretsMountPath, ReadOnly: true})
	}
	return c, nil
}

// of-watchdog's endpoints: /_/health answers 200 once its lock file exists (the process is
// alive); /_/ready asks the function's own ready_path when the image sets one (ours wait for
// their stores and, in bid, the campaign snapshot), so a replica gets traffic only when it can
// serve. The local provider probes /_/ready the same way.
const (
	healthPath = "/_/health"
	readyPath  = "/_/ready"
)

// probe checks one of of-watchdog's endpoints over HTTP or, without http_probe, the lock file
// itself, as faas-netes does.
func (o Options) probe(p Probe, path string) *corev1.Probe {
	handler := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/.lock"}}}
	if o.HTTPProbe {
		handler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(WatchdogPort), Scheme: corev1.URISchemeHTTP,
		}}
	}
	return &corev1.Probe{
		ProbeHandler:        handler,
		InitialDelaySeconds: p.InitialDelaySeconds,
		TimeoutSeconds:      p.TimeoutSeconds,
		PeriodSeconds:       p.PeriodSeconds,
		SuccessThreshold:    p.SuccessThreshold,
		FailureThreshold:    p.FailureThreshold,
	}
}

// terminationGrace lets a replica finish its longest request: the function's write_timeout
// (of-watchdog drains for that long after SIGTERM) plus 2 s, at least 30 s.
func terminationGrace(env map[string]string) time.Duration {
	grace := 30 * time.Second
	if v, ok := env["write_timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, errN := strconv.Atoi(v); errN == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err == nil && d+2*time.Second > grace {
			grace = d + 2*time.Second
		}
	}
	return grace
}

func resourceList(r *types.FunctionResources) (corev1.ResourceList, error) {
	if r == nil {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for name, v := range map[corev1.ResourceName]string{corev1.ResourceMemory: r.Memory, corev1.ResourceCPU: r.CPU} {
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, badRequest("%s %q is not a Kubernetes quantity (e.g. 128Mi, 250m)", name, v)
		}
		out[name] = q
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Service is the function's ClusterIP Service on the watchdog's port.
func (o Options) Service(req types.FunctionDeployment) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      req.Service,
			Namespace: o.Namespace,
			Labels:    map[string]string{FunctionLabel: req.Service},
		},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{FunctionLabel: req.Service},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: WatchdogPort, TargetPort: intstr.FromInt32(WatchdogPort),
			}},
		},
	}
}

// Status is the function as the provider API describes it, read from its Deployment.
func Status(d *appsv1.Deployment) types.FunctionStatus {
	s := types.FunctionStatus{
		Name:              d.Name,
		Namespace:         d.Namespace,
		AvailableReplicas: uint64(d.Status.AvailableReplicas),
		CreatedAt:         d.CreationTimestamp.Time,
	}
	if d.Spec.Replicas != nil {
		s.Replicas = uint64(*d.Spec.Replicas)
	}
	pod := d.Spec.Template
	labels := map[string]string{}
	for k, v := range pod.Labels {
		if k != FunctionLabel {
			labels[k] = v
		}
	}
	s.Labels = &labels
	annotations := map[string]string{}
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	s.Annotations = &annotations
	for k, v := range pod.Spec.NodeSelector {
		s.Constraints = append(s.Constraints, k+"="+v)
	}
	sort.Strings(s.Constraints)
	for _, v := range pod.Spec.Volumes {
		if v.Name == "secrets" && v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					s.Secrets = append(s.Secrets, src.Secret.Name)
				}
			}
		}
	}
	if len(pod.Spec.Containers) == 0 {
		return s
	}
	c := pod.Spec.Containers[0]
	s.Image = c.Image
	for _, e := range c.Env {
		if e.Name == "fprocess" {
			s.EnvProcess = e.Value
			continue
		}
		if s.EnvVars == nil {
			s.EnvVars = map[string]string{}
		}
		s.EnvVars[e.Name] = e.Value
	}
	s.Limits = functionResources(c.Resources.Limits)
	s.Requests = functionResources(c.Resources.Requests)
	if sc := c.SecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil {
		s.ReadOnlyRootFilesystem = *sc.ReadOnlyRootFilesystem
	}
	return s
}

func functionResources(l corev1.ResourceList) *types.FunctionResources {
	if len(l) == 0 {
		return nil
	}
	r := &types.FunctionResources{}
	if q, ok := l[corev1.ResourceMemory]; ok {
		r.Memory = q.String()
	}
	if q, ok := l[corev1.ResourceCPU]; ok {
		r.CPU = q.String()
	}
	return r
}

func ptr[T any](v T) *T { return &v }
