-- Health of an argoproj.io/ApplicationSet as seen by its parent (App-of-Apps).
-- Installed by ecoeco.gitops.argocd as argocd-cm key
-- resource.customizations.health.argoproj.io_ApplicationSet (Lua 5.1 / gopher-lua).
--
-- Argo CD has no health check for ApplicationSets: a parent counts one Healthy
-- as soon as it exists and syncs its next wave while the set's Applications
-- are still being generated or cannot render (seen with v3.6.1). Here the set
-- is Healthy only when every Application it generated is Synced and Healthy,
-- read from what the applicationset-controller writes in its status:
--   no status or no conditions yet                     -> Progressing
--   ErrorOccurred=True / ResourcesUpToDate=False       -> Degraded
--   RolloutProgressing=True (progressive syncs)        -> Progressing
--   an app of status.applicationStatus not Healthy     -> Progressing
--   an app of status.resources not Synced and Healthy  -> Progressing
--   fewer apps listed than status.resourcesCount, or
--   than its list generators declare                   -> Progressing
--   otherwise                                          -> Healthy
-- status.resources follows the apps' sync and health only while the
-- applicationset-controller runs with progressive syncs enabled (it then
-- reconciles the set on every change of one of its apps); the argocd role
-- turns them on with this check (argocd-cmd-params-cm).
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function text(c)
  local msg = c.type
  if c.reason ~= nil and c.reason ~= "" then
    msg = msg .. " (" .. c.reason .. ")"
  end
  if c.message ~= nil and c.message ~= "" then
    msg = msg .. ": " .. c.message
  end
  return msg
end

local function declared(spec)
  -- apps its generators declare, when every generator is a plain list of elements
  if spec == nil or spec.generators == nil then
    return nil
  end
  local total = 0
  local any = false
  for _, g in ipairs(spec.generators) do
    if g.list == nil or g.list.elementsYaml ~= nil or g.selector ~= nil then
      return nil
    end
    for k, _ in pairs(g) do
      if k ~= "list" then
        return nil
      end
    end
    any = true
    if g.list.elements ~= nil then
      total = total + #g.list.elements
    end
  end
  if not any then
    return nil
  end
  return total
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the applicationset-controller to reconcile the set"
  return hs
end

local failed = condition(status.conditions, "ErrorOccurred")
if failed ~= nil and failed.status == "True" then
  hs.status = "Degraded"
  hs.message = text(failed)
  return hs
end
local stale = condition(status.conditions, "ResourcesUpToDate")
if stale ~= nil and stale.status == "False" then
  hs.status = "Degraded"
  hs.message = text(stale)
  return hs
end
local rolling = condition(status.conditions, "RolloutProgressing")
if rolling ~= nil and rolling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(rolling)
  return hs
end

if status.applicationStatus ~= nil then
  for _, a in ipairs(status.applicationStatus) do
    if a.status ~= "Healthy" then
      hs.status = "Progressing"
      hs.message = "Application " .. tostring(a.application) .. " is " .. tostring(a.status)
      if a.message ~= nil and a.message ~= "" then
        hs.message = hs.message .. ": " .. a.message
      end
      return hs
    end
  end
end

local listed = 0
if status.resources ~= nil then
  for _, r in ipairs(status.resources) do
    if r.kind == nil or r.kind == "Application" then
      listed = listed + 1
      local health = nil
      if r.health ~= nil then
        health = r.health.status
      end
      if r.status ~= "Synced" or health ~= "Healthy" then
        hs.status = "Progressing"
        hs.message = "Application " .. tostring(r.name) .. " is " .. tostring(r.status) .. "/" .. tostring(health)
        return hs
      end
    end
  end
end

local expected = status.resourcesCount
local want = declared(obj.spec)
if want ~= nil and (expected == nil or want > expected) then
  expected = want
end
if expected ~= nil and listed < expected then
  hs.status = "Progressing"
  hs.message = listed .. " of " .. expected .. " Applications generated"
  return hs
end

hs.status = "Healthy"
hs.message = listed .. " Applications Synced and Healthy"
return hs
