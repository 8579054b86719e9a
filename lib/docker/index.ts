/**
 * Docker for the harness, without a registry: an engine (one that answers, or our own safe
 * dockerd), one CLI gate that never pulls, images built locally, containers on the host network.
 */
export {
  DEFAULT_ENGINE_ROOT,
  DEFAULT_SOCKET,
  EngineUnavailableError,
  cannotStartReason,
  dockerEnv,
  findEngine,
  leftovers,
  pingEngine,
  releaseHolder,
  stopEngine,
  useEngine,
  withDirLock,
  type DockerEngine,
  type EngineEndpoint,
  type EngineSource,
  type UseEngineOptions,
} from './engine.ts';
export {
  RegistryRefusedError,
  docker,
  dockerfileBaseImages,
  guardArgs,
  imagePresent,
  runImageOf,
  type DockerCallOptions,
  type EngineRef,
} from './cli.ts';
export {
  LOCAL_NODE_IMAGE,
  buildImage,
  clearPreviousBuild,
  ensureBaseImage,
  imageSize,
  removeImage,
  type BuildOptions,
  type BuiltImage,
} from './images.ts';
export {
  containerHandle,
  listContainers,
  runContainer,
  type Container,
  type ContainerState,
  type RunOptions,
} from './containers.ts';
export {
  HostNetChangedError,
  assertHostNetUnchanged,
  diffHostNet,
  restoreHostNet,
  snapshotHostNet,
  type HostNetSnapshot,
} from './host-safety.ts';
