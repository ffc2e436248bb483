-- bench/stats.lua -- the one summary statistic the bench scripts share.
local M = {}

-- the q-quantile of the numbers in xs (default 0.5: the median; an even
-- count gives the mean of the middle two), interpolated between neighbours;
-- nil for no numbers. xs is not changed.
function M.quantile(xs, q)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  if #s == 0 then return nil end
  table.sort(s)
  local i = (#s - 1) * (q or 0.5) + 1
  local lo = math.floor(i)
  return s[lo] + (s[math.min(lo + 1, #s)] - s[lo]) * (i - lo)
end

return M
