# The mlflow-sharinghub server: `docker build -t mlflow-sharinghub .`, then see README.md, "Container image".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project and its runtime dependencies in a virtualenv, copied whole into the runtime stage -------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/mlflow-sharinghub
ENV PATH=/opt/mlflow-sharinghub/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md manage.py ./
COPY mlflow_sh mlflow_sh
COPY tracking tracking
COPY registry registry
COPY permissions permissions
COPY stac_publish stac_publish
# The runtime dependencies only, at the versions the suite passed with (no test extra, no mlflow). Every one
# ships a wheel, psycopg[binary] with its own libpq: neither stage needs a compiler or a Debian package.
RUN pip install -c constraints.txt .

# The MLflow web UI's assets, taken from the pinned mlflow wheel by `manage.py fetch_ui`, into the folder the
# runtime stage's MLFLOW_UI_DIR names (outside the data volume). WITH_UI=0 builds an API-only image.
ARG WITH_UI=1
RUN if [ "$WITH_UI" = 1 ]; then python manage.py fetch_ui --dest /opt/mlflow-ui; else mkdir -p /opt/mlflow-ui; fi

# --- runtime ----------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# uid and gid 999 pinned: the EOEPCA values set `fsGroup: 999`, the id the original image's `useradd -r` got.
# data/ exists, owned by mlflow, before VOLUME: a new volume takes the ownership of the folder it is mounted on.
RUN groupadd --system --gid 999 mlflow \
    && useradd --system --uid 999 --gid 999 --create-home --home-dir /home/mlflow --shell /usr/sbin/nologin mlflow \
    && install -d -o mlflow -g mlflow /home/mlflow/data
COPY --from=builder /opt/mlflow-sharinghub /opt/mlflow-sharinghub
COPY --from=builder /opt/mlflow-ui /opt/mlflow-ui
COPY deploy/docker/entrypoint.sh /usr/local/bin/mlflow-sharinghub-entrypoint
COPY deploy/docker/healthcheck.py /usr/local/bin/mlflow-sharinghub-healthcheck
COPY manage.py /home/mlflow/manage.py
# The original image's defaults. The SQLite URI is absolute (four slashes): a relative one is read from the
# installed package's folder, not from the working directory.
ENV PATH=/opt/mlflow-sharinghub/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=mlflow_sh.settings \
    MLFLOW_HOST=0.0.0.0 \
    MLFLOW_PORT=5000 \
    MLFLOW_BACKEND_STORE_URI=sqlite:////home/mlflow/data/mlflow.db \
    MLFLOW_ARTIFACTS_DESTINATION=./data/mlartifacts \
    MLFLOW_UI_DIR=/opt/mlflow-ui
# Numeric, so that Kubernetes can verify `runAsNonRoot: true` without reading /etc/passwd.
USER 999:999
WORKDIR /home/mlflow
VOLUME ["/home/mlflow/data"]
EXPOSE 5000
# The start period covers the migrations of a first start.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/mlflow-sharinghub-healthcheck"]
ENTRYPOINT ["mlflow-sharinghub-entrypoint"]
CMD ["serve"]
