-- Health of an argoproj.io/Application as seen by its parent (App-of-Apps).
-- Installed by ecoeco.gitops.argocd as argocd-cm key
-- resource.customizations.health.argoproj.io_Application (Lua 5.1 / gopher-lua).
--
-- Stricter than the check in Argo CD's documentation, which only copies
-- status.health: an app whose manifests cannot be generated reports sync
-- "Unknown" and health "Healthy", so a parent would sync its next wave past
-- it. Here, in order:
--   no status yet                                  -> Progressing
--   ComparisonError / InvalidSpecError condition   -> Degraded
--   an operation requested or running              -> Progressing
--   a failed operation (OperationFailed/SyncError
--     condition, operationState Failed or Error)   -> Degraded
--   sync status not Synced                         -> Progressing
--   otherwise                                      -> status.health as reported
local hs = {}

local function first_condition(conditions, types)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type ~= nil and types[condition.type] then
      return condition
    end
  end
  return nil
end

local function describe(condition)
  local text = condition.type
  if condition.message ~= nil and condition.message ~= "" then
    text = text .. ": " .. condition.message
  end
  return text
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the application controller to report a status"
  return hs
end

local broken = first_condition(status.conditions, { ComparisonError = true, InvalidSpecError = true })
if broken ~= nil then
  hs.status = "Degraded"
  hs.message = describe(broken)
  return hs
end

local op = status.operationState
if obj.operation ~= nil or (op ~= nil and (op.phase == "Running" or op.phase == "Terminating")) then
  hs.status = "Progressing"
  if op ~= nil and op.message ~= nil and op.message ~= "" then
    hs.message = "Operation in progress: " .. op.message
  else
    hs.message = "Operation in progress"
  end
  return hs
end

local failed = first_condition(status.conditions, { OperationFailed = true, SyncError = true })
if failed ~= nil then
  hs.status = "Degraded"
  hs.message = describe(failed)
  return hs
end
if op ~= nil and (op.phase == "Failed" or op.phase == "Error") then
  hs.status = "Degraded"
  hs.message = "Last operation " .. op.phase
  if op.message ~= nil and op.message ~= "" then
    hs.message = hs.message .. ": " .. op.message
  end
  return hs
end

local sync = "Unknown"
if status.sync ~= nil and status.sync.status ~= nil then
  sync = status.sync.status
end
if sync ~= "Synced" then
  hs.status = "Progressing"
  hs.message = "Sync status is " .. sync
  return hs
end

if status.health ~= nil and status.health.status ~= nil then
  hs.status = status.health.status
  hs.message = status.health.message or ""
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the application controller to report health"
return hs
