# warpsync service image: `docker build -t warpsync . && docker run --rm -p 5555-5557:5555-5557 -p 9108:9108 warpsync`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libsndfile for soundfile (WAV input of `warpsync pub`); nothing else needs system packages.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/warpsync

# torch first, pinned to the CPU build from its own index (the default index would pull a multi-GB CUDA build).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY clients/python /opt/warpsync/clients/python
RUN pip install /opt/warpsync/clients/python

COPY pyproject.toml README.md /opt/warpsync/
COPY service /opt/warpsync/service
COPY configs /opt/warpsync/configs
RUN pip install /opt/warpsync

RUN useradd --system --uid 10001 --no-create-home warpsync
USER warpsync

# ingest (PULL), events (XPUB), control (ROUTER), Prometheus
EXPOSE 5555 5556 5557 9108

# Bind every socket on all interfaces inside the container; SIGTERM (docker stop) drains and exits 0.
STOPSIGNAL SIGTERM
CMD ["warpsync", "serve", \
     "--ingest", "tcp://0.0.0.0:5555", \
     "--publish", "tcp://0.0.0.0:5556", \
     "--control", "tcp://0.0.0.0:5557", \
     "--metrics-port", "9108", \
     "--metrics-host", "0.0.0.0"]
