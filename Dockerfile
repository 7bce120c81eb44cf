# syntax=docker/dockerfile:1
# restate-pg: `restate-pg` as the entrypoint, run by an unprivileged user.
#   docker build -t restate-pg .
#   docker run --rm -e DATABASE_URL=postgresql://... restate-pg migrate
# Your application's code is not in the image: mount it (see docker-compose.yml) or build FROM it.

ARG PYTHON_VERSION=3.12

# -- build: the package's wheel and every dependency's, so the runtime stage needs no compiler --
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY restate_pg ./restate_pg
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# -- runtime -----------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/restate_pg-*.whl \
    && useradd --create-home --uid 10001 --user-group restate \
    && install -d -o restate -g restate /app
USER 10001:10001
WORKDIR /app
EXPOSE 8080 9070
ENTRYPOINT ["restate-pg"]
CMD ["--help"]
