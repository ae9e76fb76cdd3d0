// The image a container app runs now, if it exists. Provisioning again must not roll an app
// back to the placeholder image after `azd deploy` has put the real one in place. A separate
// module, so that reading the app is not a circular dependency of the template deploying it.

@description('Name of the container app.')
param name string

@description('Whether the app exists (azd sets SERVICE_<NAME>_RESOURCE_EXISTS after the first deploy).')
param exists bool

resource existingApp 'Microsoft.App/containerApps@2024-03-01' existing = if (exists) {
  name: name
}

output image string = exists ? existingApp.properties.template.containers[0].image : ''
