// One service as a container app: runs as its own user-assigned identity, pulls from the
// registry with it, takes its settings as plain environment values (there are no secrets).

@description('Name of the container app (2-32 lowercase letters, digits and hyphens).')
param name string

@description('Azure region of the app.')
param location string

@description('Tags applied to the app; the azd-service-name tag is added here.')
param tags object

@description('The service this app hosts: its key under `services` in azure.yaml (azd finds the app by this tag).')
param serviceName string

@description('Resource id of the Container Apps environment.')
param environmentId string

@description('Resource id of the user-assigned managed identity the app runs as and pulls images with.')
param identityId string

@description('Login server of the container registry, e.g. crxyz.azurecr.io.')
param registryServer string

@description('Port the service listens on inside the container.')
param targetPort int

@description('true: reachable from the internet over HTTPS; false: only from apps in the same environment.')
param external bool

@description('Environment variables as [{ name, value }]: plain values only.')
param env array

@description('Whether the app already exists (azd: SERVICE_<NAME>_RESOURCE_EXISTS), so its deployed image is kept.')
param exists bool

@description('Mount an EmptyDir volume at /data: the SQLite demo store, lost whenever the replica restarts.')
param dataVolume bool = false

@description('Replicas kept running; 1 avoids a cold start in front of an audience.')
@minValue(0)
param minReplicas int = 1

@description('Most replicas. The SQLite-backed services must stay at 1: each replica has its own file.')
@minValue(1)
param maxReplicas int = 1

@description('Route a browser to the replica that served it before (session affinity, by cookie).')
param stickySessions bool = false

// Until `azd deploy` pushes the real image, the app runs a placeholder. It must answer on the
// service's port, or the first revision never becomes healthy: Microsoft's ASP.NET sample image
// listens where ASPNETCORE_HTTP_PORTS says (containerapps-helloworld only on 80).
var placeholderImage = 'mcr.microsoft.com/dotnet/samples:aspnetapp'
var placeholder = empty(currentImage.outputs.image)

// The service's own probes (service_kit::probe): /healthz is up, /readyz can serve. The
// placeholder has neither, so it keeps Container Apps' default TCP probes on the same port;
// azd deploy changes only the image, so the next `azd provision` adds these.
var probes = [
  {
    type: 'Liveness'
    httpGet: { path: '/healthz', port: targetPort }
    initialDelaySeconds: 3
    periodSeconds: 10
    failureThreshold: 3
  }
  {
    type: 'Readiness'
    httpGet: { path: '/readyz', port: targetPort }
    initialDelaySeconds: 3
    periodSeconds: 5
    failureThreshold: 3
  }
]

module currentImage 'container-image.bicep' = {
  name: '${name}-current-image'
  params: {
    name: name
    exists: exists
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // `managedEnvironmentId` is the deprecated name of the same property (2024-03-01 schema).
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: external
        targetPort: targetPort
        transport: 'auto'
        allowInsecure: false
        stickySessions: {
          affinity: stickySessions ? 'sticky' : 'none'
        }
      }
      registries: [
        {
          server: registryServer
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: serviceName
          image: placeholder ? placeholderImage : currentImage.outputs.image
          env: placeholder ? concat(env, [{ name: 'ASPNETCORE_HTTP_PORTS', value: string(targetPort) }]) : env
          probes: placeholder ? [] : probes
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          volumeMounts: dataVolume ? [{ volumeName: 'data', mountPath: '/data' }] : []
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
      }
      volumes: dataVolume ? [{ name: 'data', storageType: 'EmptyDir' }] : []
    }
  }
}

output name string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
