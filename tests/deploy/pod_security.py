"""The Kubernetes Pod Security Standards (levels baseline and restricted, version latest), as the API
server's admission checks them on a pod spec: the controls that apply to Linux pods.
https://kubernetes.io/docs/concepts/security/pod-security-standards/
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]

LEVELS = ("privileged", "baseline", "restricted")
_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
_SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}  # fmt: skip
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip


def _containers(spec: Spec) -> list[Spec]:
    found: list[Spec] = (
        spec.get("initContainers", []) + spec.get("containers", []) + spec.get("ephemeralContainers", [])
    )
    return found


def _baseline(spec: Spec) -> list[str]:
    problems = [f"{key}: true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    problems += [f"hostPath volume {v['name']}" for v in spec.get("volumes", []) if "hostPath" in v]
    pod = spec.get("securityContext", {})
    contexts = [("pod", pod)]
    problems += [
        f"sysctl {sysctl['name']}" for sysctl in pod.get("sysctls", []) if sysctl["name"] not in _SAFE_SYSCTLS
    ]
    for container in _containers(spec):
        context = container.get("securityContext", {})
        name = container["name"]
        contexts.append((name, context))
        if context.get("privileged"):
            problems.append(f"{name}: privileged")
        added = set(context.get("capabilities", {}).get("add", [])) - _BASELINE_CAPABILITIES
        problems += [f"{name}: adds capability {capability}" for capability in sorted(added)]
        problems += [
            f"{name}: hostPort {port['hostPort']}"
            for port in container.get("ports", [])
            if port.get("hostPort")
        ]
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount {context['procMount']}")
    for where, context in contexts:
        if context.get("seccompProfile", {}).get("type") == "Unconfined":
            problems.append(f"{where}: seccomp Unconfined")
        if context.get("appArmorProfile", {}).get("type") == "Unconfined":
            problems.append(f"{where}: AppArmor Unconfined")
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type", "") not in _SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            problems.append(f"{where}: SELinux options {selinux}")
    return problems


def _restricted(spec: Spec) -> list[str]:
    problems = [
        f"volume {volume['name']} of a type restricted forbids"
        for volume in spec.get("volumes", [])
        if not (set(volume) - {"name"}) <= _RESTRICTED_VOLUMES
    ]
    pod = spec.get("securityContext", {})
    if pod.get("runAsUser") == 0:
        problems.append("pod: runAsUser 0")
    for container in _containers(spec):
        context = container.get("securityContext", {})
        name = container["name"]
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if context.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if context.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = context.get("seccompProfile", pod.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccomp profile is not RuntimeDefault or Localhost")
        capabilities = context.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: does not drop ALL capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities other than NET_BIND_SERVICE")
    return problems


def violations(spec: Spec, level: str) -> list[str]:
    """What in a pod spec the given level forbids (empty: the API server admits it)."""
    assert level in LEVELS, level
    if level == "privileged":
        return []
    problems = _baseline(spec)
    if level == "restricted":
        problems += _restricted(spec)
    return problems
