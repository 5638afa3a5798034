"""The Helm chart and the Argo CD Application, rendered by Helm's own engine and checked against Kubernetes' schemas.

Helm runs in process (helm-python-sdk wraps Helm 4's Go library: no helm binary, no cluster, no network).
Rendering goes through `helm install --dry-run=client`, so values.schema.json is enforced exactly as at an
install. Every rendered object is validated offline against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: an unknown field fails).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import helm_python as helm
import jsonschema
import kubernetes_validate
import psycopg
import pytest
import yaml
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "mlflow-sharinghub"
APPLICATION = REPO / "deploy" / "argocd" / "mlflow-sharinghub.yaml"
RELEASE, NAMESPACE = "mlflow-sharinghub", "sharinghub"
K8S_VERSION = "1.33.0"

# A client dry-run never connects, but Helm wants a cluster configuration all the same.
KUBECONFIG_NOWHERE = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "http://127.0.0.1:9"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {}}]
current-context: none
"""

EXTERNAL_DATABASE = {
    "replicaCount": 3,
    "persistence": {"enabled": False},
    "mlflowSharinghub": {"existingSecret": "mlflow-db", "backendStoreUriSecret": True,
                         "artifactsDestination": "s3://artifacts/mlflow", "cacheUrl": "redis://redis:6379/0"},
    "s3": {"enabled": True, "existingSecret": "team-s3"},
}
PUBLISHING = {
    "postgresql": {"enabled": True},
    "persistence": {"enabled": False},
    "mlflowSharinghub": {"gitlabUrl": "https://gitlab.example.org", "gitlabOauthExistingSecret": "gitlab-oauth",
                         "gitlabMandatoryTopics": "sharinghub:aimodel", "artifactsDestination": "s3://artifacts"},
    "s3": {"enabled": True},
    "stacPublish": {"enabled": True, "url": "https://stac.example.org", "publicBaseUrl": "https://hub.example.org/mlflow",
                    "auth": "bearer", "collection": "models", "timeout": 20, "bbox": "-180,-90,180,90"},
    "autoscaling": {"enabled": True, "maxReplicas": 4, "targetMemoryUtilizationPercentage": 75},
    "extraEnv": {"LOG_LEVEL": "DEBUG", "MLFLOW_WORKER_TIMEOUT": 300},
}


def guide_values() -> dict:
    """The valuesObject of the Argo CD Application: the deployment guide's values, from their one copy."""
    return application()["spec"]["source"]["helm"]["valuesObject"]


def application() -> dict:
    return yaml.safe_load(APPLICATION.read_text())


CASES = {"guide": guide_values(), "defaults": {}, "external-database": EXTERNAL_DATABASE, "publishing": PUBLISHING}


class Rendered:
    """The objects of one release, by (kind, name), and its NOTES."""

    def __init__(self, manifest: str, notes: str):
        self.docs = [doc for doc in yaml.safe_load_all(manifest) if doc]
        self.objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in self.docs}
        self.notes = notes

    def get(self, kind: str, name: str) -> dict:
        return self.objects[(kind, name)]

    def names(self, kind: str) -> set[str]:
        return {name for (k, name) in self.objects if k == kind}

    def config(self) -> dict:
        return self.get("ConfigMap", RELEASE)["data"]


@pytest.fixture(scope="module")
def helm_config():
    with helm.Config(namespace=NAMESPACE, storage_driver="memory", kubeconfig_content=KUBECONFIG_NOWHERE) as config:
        yield config


@pytest.fixture(scope="module")
def install(helm_config):
    """`helm install --dry-run=client mlflow-sharinghub <chart> -n sharinghub` with the given values."""

    def install(values: dict) -> Rendered:
        release = helm_config.install(str(CHART_DIR), RELEASE, values, namespace=NAMESPACE, dry_run="client")
        return Rendered(release["manifest"], release["notes"])

    return install


def container(workload: dict, name: str | None = None) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if name is None or c["name"] == name)


def env_of(workload: dict, name: str | None = None) -> dict[str, dict]:
    return {entry["name"]: entry for entry in container(workload, name).get("env", [])}


def secret_ref(entry: dict) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- lint and Kubernetes schemas, for every case ---------------------------------------------------------------

@pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())
def test_chart_passes_helm_lint_strict(values):
    report = helm.lint(str(CHART_DIR), values, strict=True, namespace=NAMESPACE, kube_version=f"v{K8S_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # 2 warning, 3 error; 1 is "icon is recommended"


def test_lint_does_report_problems():
    """The lint assertion above is not vacuous: the same call reports a wrong value."""
    report = helm.lint(str(CHART_DIR), {"service": {"port": "abc"}}, strict=True)
    assert any(m["severity"] == 3 and "/service/port" in m["error"] for m in report["messages"]), report


@pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())
def test_every_object_is_valid_for_kubernetes(install, values):
    rendered = install(values)
    assert rendered.docs
    for doc in rendered.docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on an unknown field or a wrong type


@pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())
def test_environment_names_are_read_by_the_server(install, values):
    """A misspelt variable would be ignored silently: each one set must be read by settings or gunicorn."""
    sources = (REPO / "mlflow_sh" / "settings.py").read_text() + (REPO / "mlflow_sh" / "gunicorn.conf.py").read_text()
    read = set(re.findall(r"(?:env_\w+|os\.environ\.get)\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']", sources))
    read |= {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}  # read by libpq and boto3
    rendered = install(values)
    for name in rendered.names("Deployment"):  # the server and the worker; PostgreSQL's own pod is not ours
        assert set(env_of(rendered.get("Deployment", name))) - read == set()
    assert set(rendered.config()) - read == set()


# --- the deployment guide's Application ------------------------------------------------------------------------

def test_application_points_at_this_chart():
    app = application()
    source = app["spec"]["source"]
    assert (REPO / source["path"] / "Chart.yaml").is_file()
    assert source["targetRevision"] == yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"]
    assert app["metadata"] == {"name": "mlflow-sharinghub", "namespace": "argocd"}
    assert app["spec"]["destination"]["namespace"] == NAMESPACE
    assert {"FailOnSharedResource=true", "CreateNamespace=true"} <= set(app["spec"]["syncPolicy"]["syncOptions"])


def test_application_values_pass_the_schema():
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    with helm.Chart.load(CHART_DIR) as chart:
        assert chart.schema == schema
        chart.validate_schema(guide_values())  # Helm's validator, on the merged values as at install
    jsonschema.Draft7Validator(schema).validate(guide_values())


def test_guide_release_has_the_guides_resources(install):
    rendered = install(guide_values())
    assert set(rendered.objects) == {
        ("Deployment", "mlflow-sharinghub"), ("Service", "mlflow-sharinghub"), ("Ingress", "mlflow-sharinghub"),
        ("StatefulSet", "mlflow-sharinghub-postgresql"), ("Service", "mlflow-sharinghub-postgresql"),
        ("Secret", "mlflow-sharinghub-postgres"),
        # Not in the guide's table: the settings, the database's first-start script, the pods' identity.
        ("ConfigMap", "mlflow-sharinghub"), ("ConfigMap", "mlflow-sharinghub-postgresql-initdb"),
        ("ServiceAccount", "mlflow-sharinghub"),
    }


def test_guide_server_configuration(install):
    rendered = install(guide_values())
    deployment = rendered.get("Deployment", "mlflow-sharinghub")
    server = container(deployment, "mlflow-sharinghub")
    assert server["image"] == "eoepca/mlflow-sharinghub:latest"
    assert server["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["envFrom"] == [{"configMapRef": {"name": "mlflow-sharinghub"}}]

    env = env_of(deployment)
    assert secret_ref(env["SECRET_KEY"]) == ("mlflow-sharinghub", "secret-key")
    assert secret_ref(env["AWS_ACCESS_KEY_ID"]) == ("mlflow-sharinghub-s3", "access-key-id")
    assert secret_ref(env["AWS_SECRET_ACCESS_KEY"]) == ("mlflow-sharinghub-s3", "secret-access-key")
    assert secret_ref(env["PGPASSWORD"]) == ("mlflow-sharinghub-postgres", "password")

    guide = guide_values()
    assert rendered.config() == {
        "MLFLOW_HOST": "0.0.0.0",
        "MLFLOW_PORT": "5000",
        "MLFLOW_WORKERS": "4",
        "DEBUG": "false",
        "LOGIN_AUTO_REDIRECT": "false",
        "TRUST_PROXY_HEADERS": "true",
        "MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow@mlflow-sharinghub-postgresql:5432/mlflow",
        "MLFLOW_ARTIFACTS_DESTINATION": guide["mlflowSharinghub"]["artifactsDestination"],
        "MLFLOW_S3_ENDPOINT_URL": guide["s3"]["endpointUrl"],
        "SHARINGHUB_URL": guide["mlflowSharinghub"]["sharinghubUrl"],
        "SHARINGHUB_AUTH_DEFAULT_TOKEN": "false",
        "SHARINGHUB_STAC_COLLECTION": "ai-model",
    }
    # No PVC with persistence disabled: the data folder is an emptyDir, everything lives in PostgreSQL and S3.
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}
    assert "PersistentVolumeClaim" not in {kind for kind, _ in rendered.objects}


def test_guide_pods_are_locked_down(install):
    deployment = install(guide_values()).get("Deployment", "mlflow-sharinghub")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "fsGroup": 999, "fsGroupChangePolicy": "OnRootMismatch", "runAsGroup": 999, "runAsNonRoot": True,
        "runAsUser": 999, "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    server = container(deployment)
    assert server["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {}
    assert mounts["/home/mlflow/data"] == "data"


def test_guide_service_and_ingress_reach_the_pods(install):
    rendered = install(guide_values())
    deployment = rendered.get("Deployment", "mlflow-sharinghub")
    service = rendered.get("Service", "mlflow-sharinghub")
    ingress = rendered.get("Ingress", "mlflow-sharinghub")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    # `kubectl get pods|svc|ingress -l app.kubernetes.io/name=mlflow-sharinghub`, as in the guide's checks.
    for labels in (deployment["metadata"]["labels"], pod_labels, service["metadata"]["labels"], ingress["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == "mlflow-sharinghub"
    assert selects(service["spec"]["selector"], pod_labels)
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 5000, "targetPort": "http", "protocol": "TCP"}]

    guide_ingress = guide_values()["ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == guide_ingress["annotations"]  # the nginx snippet, byte for byte
    assert ingress["spec"]["tls"] == guide_ingress["tls"]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == guide_ingress["hosts"][0]["host"]
    assert rule["http"]["paths"] == [{
        "path": "/mlflow/", "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": "mlflow-sharinghub", "port": {"number": 5000}}},
    }]


def test_guide_postgresql(install):
    rendered = install(guide_values())
    statefulset = rendered.get("StatefulSet", "mlflow-sharinghub-postgresql")
    service = rendered.get("Service", "mlflow-sharinghub-postgresql")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["app.kubernetes.io/name"] == "postgresql"  # the guide's `kubectl get pods -l ...=postgresql`
    assert selects(service["spec"]["selector"], pod_labels)
    assert not selects(rendered.get("Service", "mlflow-sharinghub")["spec"]["selector"], pod_labels)
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(5432, "tcp-postgresql")]
    assert statefulset["spec"]["serviceName"] == "mlflow-sharinghub-postgresql"
    # Pod 0's claim is <template name>-<statefulset>-0: data-mlflow-sharinghub-postgresql-0.
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    assert f"{claim['metadata']['name']}-{statefulset['metadata']['name']}-0" == "data-mlflow-sharinghub-postgresql-0"

    database = container(statefulset, "postgresql")
    assert database["image"] == "postgres:16"
    env = env_of(statefulset)
    assert secret_ref(env["POSTGRES_PASSWORD"]) == ("mlflow-sharinghub-postgres", "postgres-password")
    assert secret_ref(env["MLFLOW_DB_PASSWORD"]) == ("mlflow-sharinghub-postgres", "password")
    assert (env["MLFLOW_DB_USER"]["value"], env["MLFLOW_DB_NAME"]["value"]) == ("mlflow", "mlflow")
    # PGDATA below the mount: initdb refuses the non-empty root of some volumes (lost+found).
    data_mount = next(m["mountPath"] for m in database["volumeMounts"] if m["name"] == "data")
    assert env["PGDATA"]["value"].startswith(data_mount + "/")
    assert database["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    script = rendered.get("ConfigMap", "mlflow-sharinghub-postgresql-initdb")["data"]["10-mlflow-role.sh"]
    assert "CREATE ROLE :\"role\" LOGIN PASSWORD :'password'" in script


def scram_matches(verifier: str, password: str) -> bool:
    """Whether PostgreSQL's SCRAM-SHA-256 verifier (RFC 5802 StoredKey) was made from this password."""
    iterations_salt, keys = verifier.removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_salt.split(":")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return base64.b64encode(hashlib.sha256(client_key).digest()).decode() == keys.split(":")[0]


def test_postgresql_first_start_script_creates_the_servers_role(install):
    """The ConfigMap's script, run as the postgres image runs it (psql as `postgres`), on the tests' PostgreSQL."""
    if shutil.which("psql") is None:
        pytest.skip("psql (Debian's postgresql-client) is not installed")
    script = install({"postgresql": {"enabled": True}}).get("ConfigMap", "mlflow-sharinghub-postgresql-initdb")
    server = urlsplit(settings.TEST_BACKEND_STORE_URI)
    admin = {"host": server.hostname, "port": server.port or 5432, "user": server.username, "password": server.password,
             "dbname": "postgres", "autocommit": True}
    role = f"chart_probe_{os.getpid()}"
    password = "it's \"quoted\"; -- $(not expanded) :'nor interpolated'"
    env = {**os.environ, "PGHOST": admin["host"], "PGPORT": str(admin["port"]), "PGPASSWORD": admin["password"] or "",
           "MLFLOW_DB_USER": role, "MLFLOW_DB_NAME": role, "MLFLOW_DB_PASSWORD": password}
    try:
        subprocess.run(["sh", "-c", script["data"]["10-mlflow-role.sh"]], env=env, check=True, capture_output=True)
        with psycopg.connect(**admin) as conn:
            login, superuser, verifier, owner = conn.execute(
                "SELECT r.rolcanlogin, r.rolsuper, r.rolpassword, d.datdba::regrole::text"
                " FROM pg_authid r JOIN pg_database d ON d.datname = %s WHERE r.rolname = %s", [role, role]).fetchone()
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{role}"')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    assert (login, superuser, owner) == (True, False, role)  # the server owns its database, nothing more
    assert scram_matches(verifier, password)  # the password went through the shell and psql untouched


def test_guide_postgres_secret_is_created_random_and_kept(install):
    first = install(guide_values()).get("Secret", "mlflow-sharinghub-postgres")
    second = install(guide_values()).get("Secret", "mlflow-sharinghub-postgres")
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert first["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Delete=false"
    passwords = {key: base64.b64decode(value).decode() for key, value in first["data"].items()}
    assert set(passwords) == {"password", "postgres-password"}
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", p) for p in passwords.values())
    assert passwords["password"] != passwords["postgres-password"]
    # Without a cluster (Argo CD's case) each render draws new passwords: hence the Application's rule.
    assert first["data"] != second["data"]
    [ignored] = application()["spec"]["ignoreDifferences"]
    assert (ignored["kind"], ignored["name"], ignored["jsonPointers"]) == ("Secret", first["metadata"]["name"], ["/data"])
    assert "RespectIgnoreDifferences=true" in application()["spec"]["syncPolicy"]["syncOptions"]


# --- the PostgreSQL secret against a live cluster (lookup) -----------------------------------------------------

class FakeKubernetesApi:
    """Just enough of an API server for Helm's `lookup`: discovery of v1 and GET of one namespace's secrets."""

    def __init__(self, secrets: dict[str, dict]):
        self.secrets = secrets
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                prefix = f"/api/v1/namespaces/{NAMESPACE}/secrets/"
                if path == "/api/v1":
                    self.answer(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                        {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
                         "verbs": ["get", "list"]}]})
                elif path.startswith(prefix) and path[len(prefix):] in api.secrets:
                    self.answer(200, api.secrets[path[len(prefix):]])
                else:
                    self.answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                      "code": 404})

            def answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def render(self, values: dict) -> Rendered:
        """`helm upgrade` rendering against this API server: `lookup` sees the secrets given."""
        kubeconfig = KUBECONFIG_NOWHERE.replace("http://127.0.0.1:9", f"http://127.0.0.1:{self.server.server_port}")
        with helm.Config(namespace=NAMESPACE, kubeconfig_content=kubeconfig) as config, helm.Chart.load(CHART_DIR) as chart:
            manifests = config.render(chart, values, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
        notes = manifests.pop(f"{CHART_DIR.name}/templates/NOTES.txt")
        return Rendered("\n---\n".join(manifests.values()), notes)


def live_secret(annotations: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "mlflow-sharinghub-postgres", "namespace": NAMESPACE, "annotations": annotations},
            "data": {"password": base64.b64encode(b"user-pw").decode(),
                     "postgres-password": base64.b64encode(b"admin-pw").decode()}}


def test_postgres_secret_of_this_release_keeps_its_passwords():
    secret = live_secret({"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NAMESPACE})
    with FakeKubernetesApi({"mlflow-sharinghub-postgres": secret}) as cluster:
        rendered = cluster.render(guide_values())
    assert rendered.get("Secret", "mlflow-sharinghub-postgres")["data"] == secret["data"]


def test_postgres_secret_made_by_hand_is_left_alone():
    with FakeKubernetesApi({"mlflow-sharinghub-postgres": live_secret({})}) as cluster:
        rendered = cluster.render(guide_values())
    assert "mlflow-sharinghub-postgres" not in rendered.names("Secret")
    env = env_of(rendered.get("StatefulSet", "mlflow-sharinghub-postgresql"))
    assert secret_ref(env["POSTGRES_PASSWORD"]) == ("mlflow-sharinghub-postgres", "postgres-password")


def test_postgres_secret_absent_from_the_cluster_is_created():
    with FakeKubernetesApi({}) as cluster:
        rendered = cluster.render(guide_values())
    data = rendered.get("Secret", "mlflow-sharinghub-postgres")["data"]
    assert set(data) == {"password", "postgres-password"}


def test_postgres_secret_named_by_the_user_is_never_rendered(install):
    rendered = install({"postgresql": {"enabled": True, "auth": {"existingSecret": "team-db",
                                                                  "secretKeys": {"userPasswordKey": "user"}}}})
    assert rendered.names("Secret") == set()
    assert secret_ref(env_of(rendered.get("Deployment", RELEASE))["PGPASSWORD"]) == ("team-db", "user")


# --- other configurations --------------------------------------------------------------------------------------

def test_external_database_from_a_secret(install):
    rendered = install(EXTERNAL_DATABASE)
    deployment = rendered.get("Deployment", RELEASE)
    env = env_of(deployment)
    assert secret_ref(env["MLFLOW_BACKEND_STORE_URI"]) == ("mlflow-db", "backend-store-uri")
    assert secret_ref(env["SECRET_KEY"]) == ("mlflow-db", "secret-key")
    assert secret_ref(env["AWS_ACCESS_KEY_ID"]) == ("team-s3", "access-key-id")
    assert "PGPASSWORD" not in env
    assert "MLFLOW_BACKEND_STORE_URI" not in rendered.config()
    assert rendered.config()["CACHE_URL"] == "redis://redis:6379/0"
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]  # rolling updates: no volume ties a pod to a node
    assert not {kind for kind, _ in rendered.objects} & {"StatefulSet", "Secret", "PersistentVolumeClaim"}
    assert rendered.names("Service") == {RELEASE}


def test_external_database_from_a_value(install):
    uri = "postgresql://mlflow:pw@db.example.org:5432/mlflow?sslmode=require"
    rendered = install({"mlflowSharinghub": {"backendStoreUri": uri}})
    assert rendered.config()["MLFLOW_BACKEND_STORE_URI"] == uri
    assert "MLFLOW_BACKEND_STORE_URI" not in env_of(rendered.get("Deployment", RELEASE))


def test_defaults(install):
    rendered = install({})
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    deployment = rendered.get("Deployment", RELEASE)
    assert container(deployment)["image"] == f"eoepca/mlflow-sharinghub:{chart['appVersion']}"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one pod at a time on the ReadWriteOnce volume
    # SQLite and artifacts on the data volume, at absolute paths whatever the image's working directory.
    assert rendered.config()["MLFLOW_BACKEND_STORE_URI"] == "sqlite:////home/mlflow/data/mlflow.db"
    assert rendered.config()["MLFLOW_ARTIFACTS_DESTINATION"] == "/home/mlflow/data/mlartifacts"
    pvc = rendered.get("PersistentVolumeClaim", "mlflow-sharinghub-store-pvc")
    assert pvc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "mlflow-sharinghub-store-pvc"
    assert set(env_of(deployment)) == {"SECRET_KEY"}
    assert secret_ref(env_of(deployment)["SECRET_KEY"]) == ("mlflow-sharinghub", "secret-key")
    assert {kind for kind, _ in rendered.objects} == {"Deployment", "Service", "ConfigMap", "ServiceAccount",
                                                      "PersistentVolumeClaim"}
    assert "kubectl port-forward --namespace sharinghub service/mlflow-sharinghub 5000" in rendered.notes


def test_existing_claim_is_mounted_not_created(install):
    rendered = install({"persistence": {"existingClaim": "old-store", "subPath": "mlflow"}})
    deployment = rendered.get("Deployment", RELEASE)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "old-store"
    assert next(m for m in container(deployment)["volumeMounts"] if m["name"] == "data")["subPath"] == "mlflow"
    assert rendered.names("PersistentVolumeClaim") == set()


def test_stac_publication_worker(install):
    from django.core.management import get_commands

    rendered = install(PUBLISHING)
    worker = rendered.get("Deployment", "mlflow-sharinghub-stac-publish")
    server = rendered.get("Deployment", RELEASE)
    publisher = container(worker, "stac-publish")
    assert publisher["args"] == ["python", "manage.py", "stac_publish"]  # the entrypoint runs it as given
    assert "stac_publish" in get_commands()  # the command the worker runs exists in this code base
    assert publisher["image"] == container(server)["image"]
    assert publisher["envFrom"] == container(server)["envFrom"]
    assert env_of(worker) == env_of(server)  # same database, artifacts, secrets and STAC settings
    assert not {"command", "args"} & set(container(server))  # the image's default: migrate, then serve
    assert "command" not in publisher  # through the image's entrypoint too
    assert worker["spec"]["replicas"] == 1
    # The API's Service must not send requests to the worker, and the HPA scales the API only.
    worker_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not selects(rendered.get("Service", RELEASE)["spec"]["selector"], worker_labels)
    assert worker_labels["app.kubernetes.io/name"] == "mlflow-sharinghub"
    hpa = rendered.get("HorizontalPodAutoscaler", RELEASE)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": RELEASE}

    env = env_of(server)
    assert secret_ref(env["STAC_PUBLISH_TOKEN"]) == ("mlflow-sharinghub-stac-publish", "token")
    assert secret_ref(env["GITLAB_OAUTH_CLIENT_ID"]) == ("mlflow-sharinghub-gitlab", "client-id")
    assert secret_ref(env["GITLAB_OAUTH_CLIENT_SECRET"]) == ("gitlab-oauth", "client-secret")
    assert (env["LOG_LEVEL"]["value"], env["MLFLOW_WORKER_TIMEOUT"]["value"]) == ("DEBUG", "300")
    config = rendered.config()
    assert {key: config[key] for key in config if key.startswith("STAC_")} == {
        "STAC_PUBLISH_URL": "https://stac.example.org", "STAC_PUBLIC_BASE_URL": "https://hub.example.org/mlflow",
        "STAC_PUBLISH_AUTH": "bearer", "STAC_PUBLISH_COLLECTION": "models", "STAC_PUBLISH_TIMEOUT": "20",
        "STAC_PUBLISH_BBOX": "-180,-90,180,90",
    }
    assert (config["GITLAB_URL"], config["GITLAB_MANDATORY_TOPICS"]) == ("https://gitlab.example.org", "sharinghub:aimodel")


def test_autoscaling(install):
    rendered = install(PUBLISHING)
    deployment = rendered.get("Deployment", RELEASE)
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    hpa = rendered.get("HorizontalPodAutoscaler", RELEASE)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 80, "memory": 75}
    assert "cacheUrl" in rendered.notes  # several pods without a shared cache: NOTES say so
    assert "cacheUrl" not in install(EXTERNAL_DATABASE).notes


def test_extra_env_as_a_list_passes_through(install):
    from_secret = {"name": "SHARINGHUB_SESSION_COOKIE", "valueFrom": {"secretKeyRef": {"name": "c", "key": "k"}}}
    env = env_of(install({"extraEnv": [from_secret]}).get("Deployment", RELEASE))
    assert env["SHARINGHUB_SESSION_COOKIE"] == from_secret


def test_config_change_rolls_the_pods_and_nothing_else_does(install):
    def checksum(values):
        deployment = install(values).get("Deployment", RELEASE)
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    base = checksum(guide_values())
    changed = guide_values()
    changed["mlflowSharinghub"]["sharinghubUrl"] = "https://other.example.org"
    assert checksum(changed) != base
    # The PostgreSQL passwords are drawn anew at every render and must not restart the server.
    assert checksum(guide_values()) == base


# --- values refused at install ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "where"), [
    ({"service": {"port": "abc"}}, "/service/port"),
    ({"service": {"port": 70000}}, "/service/port"),
    ({"image": {"repository": ""}}, "/image/repository"),
    ({"image": {"tag": 1.2}}, "/image/tag"),
    ({"ingress": {"hosts": ["sharinghub.example.org"]}}, "/ingress/hosts/0"),
    ({"ingress": {"hosts": [{"host": "h", "paths": ["/mlflow/"]}]}}, "/ingress/hosts/0/paths/0"),
    ({"ingress": {"hosts": [{"host": "h", "paths": [{"path": "/", "pathType": "Regex"}]}]}}, "pathType"),
    ({"ingress": {"tls": [{"secretName": "t", "hosts": "h"}]}}, "/ingress/tls/0/hosts"),
    ({"ingress": {"annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": True}}}, "/ingress/annotations"),
    ({"ingress": {"enabled": "yes"}}, "/ingress/enabled"),
    ({"postgressql": {"enabled": True}}, "postgressql"),
    ({"mlflowSharinghub": {"sharinghubURL": "https://hub"}}, "sharinghubURL"),
    ({"mlflowSharinghub": {"sharinghubUrl": "hub.example.org"}}, "/mlflowSharinghub/sharinghubUrl"),
    ({"mlflowSharinghub": {"worker": "many"}}, "/mlflowSharinghub/worker"),
    ({"stacPublish": {"enabled": True, "auth": "basic"}}, "/stacPublish/auth"),
    ({"stacPublish": {"enabled": True, "url": "https://stac.example.org"}}, "publicBaseUrl"),
    ({"persistence": {"accessMode": "ReadWriteSometimes"}}, "/persistence/accessMode"),
    ({"postgresql": {"auth": {"username": "Robert'); DROP"}}}, "/postgresql/auth/username"),
])
def test_install_refuses_wrong_values(install, values, where):
    with pytest.raises(helm.HelmError) as refused:
        install(values)
    assert "schema" in str(refused.value) and where in str(refused.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 2}, "several replicas cannot share SQLite"),
    ({"autoscaling": {"enabled": True}}, "several replicas cannot share SQLite"),
    ({"postgresql": {"enabled": True}, "mlflowSharinghub": {"backendStoreUri": "postgresql://h/db"}}, "unset mlflowSharinghub.backendStoreUri"),
    ({"stacPublish": {"enabled": True, "url": "https://s", "publicBaseUrl": "https://p"}}, "stacPublish.enabled needs PostgreSQL"),
])
def test_install_refuses_combinations_that_cannot_work(install, values, message):
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        install(values)
