# The appzen-etl worker image, built from uv.lock (no checkout needed where it runs):
#   docker build -t appzen-etl:0.1.0 .
# It holds the release folder scripts/release.sh makes (APPZEN_RELEASES) with that release
# installed, so the deployments of prefect.yaml with `pull: *release` run in it as they run on a
# worker machine (the pull step's pip install is then a no-op). Two uses (docs/prefect-server.md):
#   - a process worker in a container (the default command; settings as environment variables,
#     mappings mounted at /srv/appzen-etl/mappings);
#   - the flow-run image of a container work pool (docker, kubernetes: job variable `image`).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS release
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY scripts/release.sh scripts/
COPY pipeline pipeline/
COPY flows flows/
COPY mappings mappings/
COPY sql sql/
COPY samples samples/
RUN UV=uv UV_PYTHON_DOWNLOADS=never scripts/release.sh /opt/appzen-etl/releases

FROM python:${PYTHON_VERSION}-slim
COPY --from=release /opt/appzen-etl/releases /opt/appzen-etl/releases
RUN python -m venv /opt/appzen-etl/venv \
    && cd /opt/appzen-etl/releases/* \
    && /opt/appzen-etl/venv/bin/pip install --no-cache-dir -r requirements.txt \
    && useradd --create-home --home-dir /srv/appzen-etl appzen
ENV PATH=/opt/appzen-etl/venv/bin:$PATH \
    APPZEN_RELEASES=/opt/appzen-etl/releases \
    APPZEN_HOME=/srv/appzen-etl \
    APPZEN_MAPPINGS_DIR=/srv/appzen-etl/mappings \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1
USER appzen
WORKDIR /srv/appzen-etl
CMD ["prefect", "worker", "start", "--pool", "appzen-etl"]
