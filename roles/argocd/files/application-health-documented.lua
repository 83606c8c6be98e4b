-- Health of an argoproj.io/Application as Argo CD's documentation gives it
-- (the check removed from Argo CD 1.8): copy status.health, Progressing until
-- there is one. It does not look at sync status or error conditions, so an
-- app that cannot render its manifests (ComparisonError, sync Unknown) still
-- counts as Healthy and a parent syncs its next wave past it.
-- Installed by ecoeco.gitops.argocd when argocd_application_health_check is
-- "documented" (Lua 5.1 / gopher-lua).
local hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil and obj.status.health.status ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
